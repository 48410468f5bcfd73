"""`make demo`: the main job on the built-in default, as a shipped experiment config (configs/demo.yaml).

The demo is an experiment like any other: the same runner, resume and cell hashes, so a second
`make demo` skips every finished cell and every model call is served from the cache under OUT. It
ends with one HTML report over the whole folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig, load_config
from .experiment import Hooks, run_experiment

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def demo_config(model: str | None = None, limit: int | None = None, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The shipped demo config, with the demo command's two options and any `--set` overrides."""
    sets = [*([f"models=[{model}]"] if model else []), *([f"predict.limit={limit}"] if limit else []), *overrides]
    return load_config(DEMO_CONFIG, sets)


def run_demo(out: Path, cfg: ExperimentConfig | None = None, hooks: Hooks | None = None) -> dict[str, Any]:
    """Run (or resume) the demo grid into OUT and write OUT/report.html; the experiment record, with
    `report` (the HTML path) added."""
    from ..reports.html import build_report

    cfg = cfg or demo_config()
    record = run_experiment(cfg, Path(out), hooks)
    html, _ = build_report([Path(out)], Path(out) / "report.html",
                           title=f"recsaver demo: built-in sample, {', '.join(cfg.models)}")
    record["report"] = str(html)
    return record
