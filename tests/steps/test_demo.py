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
    said = " ".join(console.export_text(clear=False).split())
    scored = 0
    for domain in ("beauty", "movies"):
        steps = results[domain]
        assert {"baseline", "cot", "direct", "references", "text"} <= set(steps)
        assert steps["cot"]["n"] == 1 and steps["direct"]["n"] == 1
        refs = [json.loads(line) for line in (tmp_path / domain / "references" / "references.jsonl").open()]
        assert len(refs) == 1 and len(refs[0]["candidates"]) == 1
        if refs[0]["references"]:  # a verified pool: the reasoning is scored against it
            assert json.loads((tmp_path / domain / "text_scores" / "text_metrics.json").read_text())[
                "overall"]["n_scored"] == 1
            scored += 1
        else:  # SmolLM2 rejected its own explanation: said loudly, with advice, and no empty score table
            assert steps["text"] is None and not (tmp_path / domain / "text_scores").exists()
            assert f"warning: {domain}: no reasoning scores" in said and "--verify 1-off" in said
    assert scored >= 1, said
    html = (tmp_path / "report.html").read_text()
    assert "<table" in html and "data:image/png;base64," in html
    assert (tmp_path / "report.md").exists()
    assert f"report: {(tmp_path / 'report.html').resolve()}" in console.export_text().replace("\n", "")
