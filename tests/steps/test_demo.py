"""The main job end to end at its smallest: the shipped demo config through every step to report.html."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsaver.cli import app
from recsaver.steps.demo import DEMO_CONFIG, demo_config

pytestmark = pytest.mark.slow

SMALL = ["--limit", "1", "--set", "predict.max_tokens=48", "--set", "references.samples=1",
         "--set", "references.max_tokens=48", "--set", "score.metrics=[bleu,rouge1]", "--no-progress"]


def test_the_demo_is_a_shipped_config_with_the_step_defaults() -> None:
    cfg = demo_config()
    assert DEMO_CONFIG.is_file() and cfg.name == "demo" and cfg.models == ("llamacpp/smollm2-135m",)
    assert [d.name for d in cfg.domains] == ["beauty", "movies"] and all(d.sample for d in cfg.domains)
    # direct predictions and the grammar take the step defaults, as from `recsaver predict`
    assert cfg.predict.direct_max_tokens is None and cfg.predict.grammar and cfg.references.grammar
    assert demo_config(model="llamacpp/qwen2.5-0.5b", limit=2).models == ("llamacpp/qwen2.5-0.5b",)


def test_demo_runs_every_step_and_writes_the_report(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), *SMALL])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output  # an empty pool is warned about, not an error, in the demo
    record = json.loads((tmp_path / "experiment.json").read_text())
    kinds = {c["kind"] for c in record["cells"]}
    assert {"data", "baseline", "predict", "references", "score"} <= kinds
    scored = 0
    for domain in ("beauty", "movies"):
        for method in ("cot", "direct"):
            metrics = json.loads((tmp_path / domain / "smollm2-135m" / f"{method}-none" / "metrics.json").read_text())
            assert metrics["n"] == 1
        refs = [json.loads(line) for line in (tmp_path / domain / "references-exact" / "references.jsonl").open()]
        assert len(refs) == 1 and len(refs[0]["candidates"]) == 1
        score = tmp_path / domain / "smollm2-135m" / "cot-none" / "score-exact"
        status = {c["name"]: c["status"] for c in record["cells"]}[f"{domain}/smollm2-135m/cot-none/score-exact"]
        if refs[0]["references"]:  # a verified pool: the reasoning is scored against it
            assert json.loads((score / "text_metrics.json").read_text())["overall"]["n_scored"] == 1
            scored += 1
        else:  # SmolLM2 rejected its own explanation: said loudly, with advice, and no score table
            assert status == "empty-pools" and not (score / "text_metrics.json").exists()
            assert "warning:" in said and "references.verify to 1-off, calibrated or none" in said
    html = (tmp_path / "report.html").read_text()
    assert "<table" in html and "data:image/png;base64," in html and (tmp_path / "report.md").exists()
    assert f"report: {(tmp_path / 'report.html').resolve()}" in result.output.replace("\n", "")
    again = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), *SMALL])  # resumes: nothing reruns
    assert again.exit_code == 0, again.output
    statuses = {c["status"] for c in json.loads((tmp_path / "experiment.json").read_text())["cells"]}
    assert statuses <= {"skipped", "empty-pools"}, statuses  # an empty-pool score cell looks again, nothing else
