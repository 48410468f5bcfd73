"""Where installed built-in models are: `models_home`, `model_path`, `require_model`, `list_models`."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import ModelNotInstalledError
from .registry import _RECIPES, BUILTIN_MODELS, BuiltinModel, _get_builtin, _PipPackageRecipe


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
