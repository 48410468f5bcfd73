"""recsaver: LLM reasoning for personalized recommendation, and Rec-SAVER evaluation of it.

The Python API (recsaver/api.py): `recsaver.prepare`, `import_data`, `predict`, `references`,
`rebuild_references`, `score`, `distill`,
`finetune`, `report`, `experiment`, their config classes, and `sample_files` (the built-in sample).
They load on first use, so `import recsaver` and the command line stay quick.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("prepare", "import_data", "predict", "references", "rebuild_references", "score", "distill", "finetune",
        "report", "experiment", "PrepareConfig", "ImportConfig", "PredictConfig", "ReferencesConfig",
        "DistillSampleConfig", "FinetuneConfig", "ScoreConfig")
__all__ = [*_API, "sample_files", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "sample_files":
        from .sample import sample_files

        return sample_files
    raise AttributeError(f"module 'recsaver' has no attribute {name!r}")
