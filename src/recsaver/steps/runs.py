"""What every run writes beside its results: the resolved config, versions, data fingerprint."""

from __future__ import annotations

import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__
from ..data.records import write_json
from ..models import file_sha256

_LIBRARIES = ("duckdb", "pyarrow", "numpy", "scipy", "scikit-learn", "llama_cpp_python", "transformers", "torch")


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "recsaver": __version__, "platform": platform.platform()}
    for name in _LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def write_run(
    out: Path,
    *,
    step: str,
    config: dict[str, Any],
    data_file: Path | None = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write RUN/metrics.json (when given) and RUN/run.json."""
    out = Path(out)
    if metrics is not None:
        write_json(out / "metrics.json", metrics)
    run = {
        "step": step,
        "config": config,
        "data": None if data_file is None else {"path": str(data_file), "sha256": file_sha256(data_file)},
        "versions": versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    write_json(out / "run.json", run)
    return run
