"""What every run writes beside its results: the resolved config, versions, data fingerprint, status.

A run whose model calls all succeeded is `complete`. One with failed calls (after their retries) is
`incomplete`: run.json says so with the count and the errors, the command exits with
`EXIT_INCOMPLETE`, an experiment does not count the cell as done, and a rerun retries only the
failed calls (successes are in the generation cache; failures never are).
"""

from __future__ import annotations

import platform
import sys
import time
from collections import Counter
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__
from ..models import file_sha256
from ..store import RunStore

_LIBRARIES = ("duckdb", "pyarrow", "numpy", "scipy", "scikit-learn", "llama_cpp_python", "transformers", "torch")


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "recsaver": __version__, "platform": platform.platform()}
    for name in _LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


EXIT_INCOMPLETE = 3  # exit code of a command whose run has failed model calls (README: exit codes)


def no_metrics(n_failed: int) -> dict[str, Any]:
    """What a step returns in place of metrics when every call failed: counts, no numbers."""
    return {"n": 0, "n_failed": n_failed, "n_unparsed": 0, "unparsed_share": 0.0, "metrics": {}}


def run_status(failures: Sequence[tuple[str | None, str | None]], requests: int) -> dict[str, Any]:
    """run.json's status block from the (tag, error) of each failed call."""
    errors = Counter(str(e or "no text") for _, e in failures)
    return {
        "status": "incomplete" if failures else "complete",
        "failed_calls": len(failures),
        "requests": requests,
        "errors": dict(errors.most_common(10)),
        "failures": [{"tag": t, "error": e} for t, e in failures[:50]],
    }


def write_run(
    out: Path,
    *,
    step: str,
    config: dict[str, Any],
    data_file: Path | None = None,
    metrics: dict[str, Any] | None = None,
    failures: Sequence[tuple[str | None, str | None]] = (),
    requests: int = 0,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write RUN/metrics.json (when given) and RUN/run.json."""
    store = RunStore(out)
    if metrics is not None:
        store.write_metrics(metrics)
    run = {
        "step": step,
        **run_status(failures, requests),
        "config": config,
        "data": None if data_file is None else {"path": str(data_file), "sha256": file_sha256(data_file)},
        "versions": versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    store.write_run(run)
    return run
