"""sha256 of model files, memoized in a sidecar keyed by size and mtime."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .locations import models_home

_CHUNK = 8 * 1024 * 1024


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
