"""`make demo`: the main job on the built-in default (the shipped sample).

Each stage writes into its own folder under OUT, so later issues add stages
(zero-shot reasoning, Rec-SAVER references, scores, report) without changing
the earlier ones.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from ..report import metrics_table
from ..data.prepare import PrepareConfig, prepare
from ..sample import SAMPLE_DOMAINS, sample_files
from .baseline import run_baseline

# The sample has 10 users a domain; these sizes keep every split non-empty.
DEMO_SPLIT = {"train_per_label": 4, "test_per_label": 2, "test_fraction": 0.3}


def run_demo(out: Path, console: Console, progress: Callable[[bool], AbstractContextManager[Any]]) -> dict[str, Any]:
    out = Path(out)
    results: dict[str, Any] = {}
    for domain in SAMPLE_DOMAINS:
        reviews, meta = sample_files(domain)
        data_dir = out / domain / "data"
        with progress(True) as update:
            prepared = prepare(reviews, meta, data_dir, PrepareConfig(domain=domain, **DEMO_SPLIT), progress=update)
        for w in prepared.warnings:
            console.print(f"[yellow]warning:[/] {domain}: {w}", highlight=False)
        metrics = run_baseline(data_dir, "test", out / domain / "baseline")
        console.print(metrics_table(metrics, f"{domain}: naive baseline (user average), test split"))
        results[domain] = metrics
    console.print(f"demo outputs are in {out.resolve()}")
    return results
