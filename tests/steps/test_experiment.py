"""Experiment grids: the plan, a real SmolLM2 run of configs/smoke.yaml, resume, and reruns on a changed hash."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from recsaver.config import load_config
from recsaver.steps.experiment import plan, slug
from tests.report.smoke import REPO, SMOKE, TINY, invoke, smoke_experiment


def test_table3_plan_is_the_papers_grid() -> None:
    cells = plan(load_config(REPO / "configs" / "table3.yaml"))
    names = [c.name for c in cells]
    assert len(cells) == 2 * (1 + 1 + 5 + 1)  # per domain: data, baseline, 5 CoT ablations, direct
    assert names[:3] == ["beauty/data", "beauty/baseline", "beauty/qwen2.5-0.5b/cot-none"]
    assert "movies/qwen2.5-0.5b/direct-none" in names and "movies/qwen2.5-0.5b/direct-one-shot" not in names
    assert all(c.deps == ("beauty/data",) for c in cells if c.domain == "beauty" and c.kind != "data")


def test_table3_data_cells_give_fifty_balanced_test_examples_per_domain(tmp_path: Path) -> None:
    from recsaver.steps.experiment import ExperimentRunner
    from tests.conftest import require_shared_data

    require_shared_data()
    runner = ExperimentRunner(load_config(REPO / "configs" / "table3.yaml"), tmp_path)
    for cell in (c for c in plan(runner.cfg) if c.kind == "data"):
        runner.execute(cell)
        stats = json.loads((tmp_path / cell.name / "stats.json").read_text())
        assert stats["selected_per_label"]["test"] == {str(r): 10 for r in range(1, 6)}, cell.domain
        assert stats["examples"]["test"] == 50


def test_references_add_one_score_cell_per_cot_cell_and_rule() -> None:
    cfg = load_config(REPO / "configs" / "table3.yaml", ["references.enabled=true", "references.verify=exact,none",
                                                         "domains.movies.reviews=null", "domains.movies.meta=null",
                                                         "domains.movies.prepared=/some/prepared"])
    cells = plan(cfg)
    scores = [c for c in cells if c.kind == "score"]
    assert len(scores) == 2 * 5 * 2 and all(c.labels["method"] == "cot" for c in scores)
    assert ("beauty/qwen2.5-0.5b/cot-none", "beauty/references-none") in [c.deps for c in scores]
    assert not any(c.name == "movies/data" for c in cells)  # a prepared folder needs no data cell
    assert slug("llamacpp/qwen2.5-0.5b") == "qwen2.5-0.5b" and slug("hf//tmp/x y") == "tmp_x_y"


def test_distillation_grid_pairs_rating_only_with_filter_none_only() -> None:
    cfg = load_config(REPO / "configs" / "smoke.yaml", [
        "tables=[table4,table5]", "distill.students=[hf/smollm2-135m]", "distill.filters=[none,1-off]",
        "distill.rating_only=[false,true]", "distill.samples=[1,2]"])
    tunes = [c for c in plan(cfg) if c.kind == "finetune"]
    assert sorted((c.labels["samples"], c.labels["filter"], c.labels["rating_only"]) for c in tunes) == [
        (1, "1-off", False), (1, "none", False), (1, "none", True),
        (2, "1-off", False), (2, "none", False), (2, "none", True)]
    predicts = [c for c in plan(cfg) if c.kind == "predict" and "student" in c.labels]
    assert {c.labels["method"] for c in predicts if c.labels["rating_only"]} == {"direct"}


@pytest.mark.slow
def test_smoke_runs_every_cell_then_resumes_without_model_calls(tmp_path_factory: pytest.TempPathFactory,
                                                               tmp_path: Path) -> None:
    smoke = smoke_experiment(tmp_path_factory)
    record = smoke["record"]
    kinds = [c["kind"] for c in record["cells"]]
    assert kinds == ["data", "baseline", "predict", "predict", "references", "score"]
    assert all(c["status"] == "ran" for c in record["cells"])
    assert "cell 1/6" in smoke["output"] and "cell 6/6" in smoke["output"]
    folder = tmp_path / "exp"
    shutil.copytree(smoke["folder"], folder)
    tables = (folder / "tables.md").read_text()
    for row in ("Naive Baseline (Avg.)", "Our Method (zero-shot CoT)", "- No Reasoning Outputs"):
        assert row in tables
    assert "Table 11" in tables and "Table 15" in tables and "ROUGE-1 F1" in tables
    assert "\\toprule" in (folder / "tables.tex").read_text() and "<table" in (folder / "tables.html").read_text()
    assert json.loads((folder / "significance.json").read_text())[0]["reference"] == "Naive Baseline (Avg.)"

    def calls() -> int:
        with sqlite3.connect(folder / "cache.sqlite") as con:
            return con.execute("SELECT COUNT(*) FROM generations").fetchone()[0]

    before = calls()
    mtimes = {p: p.stat().st_mtime_ns for p in folder.rglob("predictions.jsonl")}
    result = invoke(["experiment", "run", str(SMOKE), "--out", str(folder), *TINY])
    again = json.loads((folder / "experiment.json").read_text())
    assert [c["status"] for c in again["cells"]] == ["skipped"] * 6 and "0 ran, 6 skipped" in result.output
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("predictions.jsonl")} == mtimes and calls() == before

    # Only the direct cell depends on direct_max_tokens: it alone reruns (one new model call).
    invoke(["experiment", "run", str(SMOKE), "--out", str(folder), *TINY, "--set", "predict.direct_max_tokens=6"])
    status = {c["name"]: c["status"] for c in json.loads((folder / "experiment.json").read_text())["cells"]}
    assert [n for n, s in status.items() if s == "ran"] == ["beauty/smollm2-135m/direct-none"]
    assert calls() == before + 1


def test_config_errors_exit_cleanly(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tests.report.smoke import cli

    result = CliRunner().invoke(cli(), ["experiment", "run", str(SMOKE), "--set", "predict.limt=1"])
    assert result.exit_code == 2 and "unknown key 'limt' in predict" in result.output
    result = CliRunner().invoke(cli(), ["experiment", "run", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "no such config file" in result.output


def test_a_pool_missing_some_gold_ratings_is_said_after_the_tables(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The paper's `exact` on small models keeps no explanation of a 2 (docs/results.md, 50+50 run): the grid
    says so per pool, as `references` does; full pools and empty ones (exit_for's error) get no such warning."""
    from recsaver.cli.experiment import say_quality_warnings
    from recsaver.store import RunStore

    pools = {"beauty/references-exact": ({"1": 0.25, "2": 0.0, "3": 0.15, "4": 0.7, "5": 0.5}, 0.48),
             "beauty/references-none": ({str(k): 1.0 for k in range(1, 6)}, 1.0),
             "movies/references-exact": ({str(k): 0.0 for k in range(1, 6)}, 0.0)}
    for name, (rates, coverage) in pools.items():
        RunStore(tmp_path / name).write_summary({"pass_rate_per_label": rates, "coverage": coverage})
    say_quality_warnings({"cells": [{"kind": "references", "name": n} for n in pools]}, tmp_path)
    err = " ".join(capsys.readouterr().err.split())
    assert "beauty/references-exact: no explanation of gold rating(s) 2 was verified" in err, err
    assert "references-none" not in err and "movies/references-exact" not in err
