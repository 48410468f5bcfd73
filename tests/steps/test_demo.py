"""The main job end to end at its smallest: the built-in sample through every step to report.html."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import pytest
from rich.console import Console

from recsaver.steps.demo import DemoConfig, run_demo

pytestmark = pytest.mark.slow


def test_demo_runs_every_step_and_writes_the_report(tmp_path: Path) -> None:
    console = Console(record=True, width=120)
    cfg = DemoConfig(limit=1, max_tokens=48, ref_samples=1, ref_max_tokens=48)
    results = run_demo(tmp_path, console=console, progress=lambda enabled: nullcontext(None), cfg=cfg)
    for domain in ("beauty", "movies"):
        steps = results[domain]
        assert {"baseline", "cot", "direct", "references", "text"} <= set(steps)
        assert steps["cot"]["n"] == 1 and steps["direct"]["n"] == 1
        refs = [json.loads(line) for line in (tmp_path / domain / "references" / "references.jsonl").open()]
        assert len(refs) == 1 and len(refs[0]["candidates"]) == 1
        assert (tmp_path / domain / "text_scores" / "text_metrics.json").exists()
    html = (tmp_path / "report.html").read_text()
    assert "<table" in html and "data:image/png;base64," in html
    assert (tmp_path / "report.md").exists()
    assert f"report: {(tmp_path / 'report.html').resolve()}" in console.export_text().replace("\n", "")
