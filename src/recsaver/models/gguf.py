"""Model specs to local GGUF paths: a built-in name, a local file, or ``hf:OWNER/REPO/FILE.gguf``."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelError, UnknownModelError
from .locations import require_model
from .registry import BUILTIN_MODELS, _strip_prefix

GGUF_MAGIC = b"GGUF"


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
