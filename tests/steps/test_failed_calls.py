"""A failed model call is never a number: a real llama.cpp server killed mid-run (issue 15, point 2).

The server is killed with SIGKILL as soon as the first answer arrives. The calls that failed must be
marked `status: failed` in predictions.jsonl, left out of the metrics and counted, run.json must say
the run is incomplete, and the CLI must warn and exit 3. A rerun against a restarted server fills in
only what failed; the same holds for references.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recsaver.data.records import load_predictions, read_jsonl
from recsaver.steps.predict import PredictConfig, run_predict
from recsaver.steps.references import ReferencesConfig, run_references
from recsaver.steps.runs import EXIT_INCOMPLETE

from ..backends.llama_server import free_port, start_llama_server

pytestmark = pytest.mark.slow

# Fail fast against a dead server: one retry, short back-off.
EXTRA = {"api_key_env": None, "max_retries": 1, "backoff_base": 0.05, "timeout": 600.0, "down_cooldown": 0.1}
LIMIT = 4


def predict_config(data: Path, base: str, cache: Path) -> PredictConfig:
    return PredictConfig(data=str(data), model="openai/smollm2", method="direct", grammar=True, max_tokens=24,
                         limit=LIMIT, base_urls=(base,), concurrency=1, cache=str(cache), extra=EXTRA)


def kill_on_first_answer(server):
    answered: list[int] = []

    def hook(index: int, generation) -> None:
        answered.append(index)
        if len(answered) == 1:
            server.stop(kill=True)

    return hook


def test_dead_server_calls_are_failed_not_scored_and_a_rerun_fills_them(small_beauty: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    server = start_llama_server(tmp_path, threads=2)
    try:
        metrics = run_predict(predict_config(small_beauty, server.base, cache), tmp_path / "run",
                              on_result=kill_on_first_answer(server))
    finally:
        server.stop(kill=True)
    predictions = load_predictions(tmp_path / "run" / "predictions.jsonl")
    failed = [p for p in predictions if p.failed]
    assert len(predictions) == LIMIT and len(failed) == LIMIT - 1, [p.status for p in predictions]
    assert all(p.rating_pred is None and p.error for p in failed)
    answered = [p for p in predictions if not p.failed]
    assert answered[0].rating_pred in (1, 2, 3, 4, 5)
    # metrics describe the one answer; the failures are counted, not scored as the worst rating
    assert metrics["n"] == 1 and metrics["n_failed"] == LIMIT - 1 and metrics["n_unparsed"] == 0
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["n"] == 1 and saved["n_failed"] == LIMIT - 1
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "incomplete" and run["failed_calls"] == LIMIT - 1 and run["requests"] == LIMIT
    assert run["errors"], run

    # The CLI with the server still dead: a warning naming the failures and exit code 3.
    env = {**os.environ, "OPENAI_API_KEY": "unused"}
    cli = [sys.executable, "-m", "recsaver.cli", "predict", "--data", str(small_beauty), "--model", "openai/smollm2",
           "--method", "direct", "--grammar", "--max-tokens", "24", "--limit", str(LIMIT), "--base-url",
           f"http://127.0.0.1:{free_port()}/v1", "--cache", str(cache), "--out", str(tmp_path / "cli"),
           "--no-progress"]
    done = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == EXIT_INCOMPLETE, done.stderr
    assert "model calls failed" in done.stderr and "incomplete" in done.stderr, done.stderr
    assert "every one of the" in done.stdout and not (tmp_path / "cli" / "metrics.json").exists()
    assert all(p.failed for p in load_predictions(tmp_path / "cli" / "predictions.jsonl"))

    # A restarted server: only the failed calls are made again, and the run is complete.
    server = start_llama_server(tmp_path, threads=2)
    try:
        run_predict(predict_config(small_beauty, server.base, cache), tmp_path / "rerun")
    finally:
        server.stop()
    rerun = json.loads((tmp_path / "rerun" / "run.json").read_text())
    assert rerun["status"] == "complete" and rerun["failed_calls"] == 0
    assert rerun["ledger"]["cache_hits"] == 1 and rerun["ledger"]["cache_misses"] == LIMIT - 1
    again = {p.example_id: p for p in load_predictions(tmp_path / "rerun" / "predictions.jsonl")}
    assert len(again) == LIMIT and not any(p.failed for p in again.values())
    assert again[answered[0].example_id] == answered[0]  # the cached answer, unchanged


def test_references_with_a_dead_server_are_incomplete_not_rejected(small_beauty: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    server = start_llama_server(tmp_path, threads=2)
    cfg = ReferencesConfig(data=str(small_beauty), model="openai/smollm2", samples=2, max_tokens=24, limit=2,
                           verify="none", grammar=True, base_urls=(server.base,), concurrency=1, cache=str(cache),
                           extra=EXTRA)
    server.stop(kill=True)  # dead before the first call: every explanation fails
    summary = run_references(cfg, tmp_path / "refs")
    rows = list(read_jsonl(tmp_path / "refs" / "references.jsonl"))
    assert all(r["failed_calls"] == 2 and r["references"] == [] for r in rows)
    assert all(c["status"] == "failed" and c["error"] for r in rows for c in r["candidates"])
    # no verdict was reached, so no pass rate is claimed
    assert summary["failed_candidates"] == 4 and all(v is None for v in summary["pass_rate_per_label"].values())
    run = json.loads((tmp_path / "refs" / "run.json").read_text())
    assert run["status"] == "incomplete" and run["failed_calls"] == 4


def test_distill_sample_with_a_dead_server_keeps_no_failed_sample(small_beauty: Path, tmp_path: Path) -> None:
    from recsaver.steps.distill import DistillSampleConfig, build_sft, run_distill_sample

    port = free_port()  # nothing listens there
    cfg = DistillSampleConfig(data=str(small_beauty), model="openai/smollm2", samples=2, max_tokens=24, limit=2,
                              base_urls=(f"http://127.0.0.1:{port}/v1",), cache=str(tmp_path / "c.sqlite"),
                              extra=EXTRA)
    summary = run_distill_sample(cfg, tmp_path / "td")
    rows = list(read_jsonl(tmp_path / "td" / "samples.jsonl"))
    assert len(rows) == 4 and all(r["status"] == "failed" and r["error"] for r in rows)
    assert summary["failed"] == 4 and summary["samples"] == 0 and summary["kept_per_filter"]["none"] == 0
    run = json.loads((tmp_path / "td" / "run.json").read_text())
    assert run["status"] == "incomplete" and run["failed_calls"] == 4
    with pytest.raises(ValueError, match="failed_call"):  # no training row is made of a failed call
        build_sft(tmp_path / "td", "none", tmp_path / "sft")


def test_an_experiment_cell_with_failed_calls_is_incomplete_and_rerun(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from recsaver.cli import app

    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    base = ["experiment", "run", "configs/smoke.yaml", "--out", str(tmp_path / "exp"), "--no-progress",
            "--set", "models=[openai/smollm2]", "--set", "references.enabled=false", "--set", "predict.limit=1",
            "--set", "tables=[table3]"]
    repo = Path(__file__).resolve().parents[2]
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        first = CliRunner().invoke(app, [*base, "--set", f"predict.base_urls=[{dead}]"])
        assert first.exit_code == EXIT_INCOMPLETE, first.output
        assert "incomplete" in first.output and "cot-none" in first.output
        record = json.loads((tmp_path / "exp" / "experiment.json").read_text())
        status = {c["name"]: c["status"] for c in record["cells"]}
        assert status["beauty/smollm2/cot-none"] == "incomplete" and status["beauty/baseline"] == "ran"
        second = CliRunner().invoke(app, [*base, "--set", f"predict.base_urls=[{dead}]"])
        assert second.exit_code == EXIT_INCOMPLETE, second.output
        cells = json.loads((tmp_path / "exp" / "experiment.json").read_text())["cells"]
        status = {c["name"]: c["status"] for c in cells}
        # done cells are skipped; the incomplete ones are not taken as done
        assert status["beauty/baseline"] == "skipped" and status["beauty/smollm2/cot-none"] == "incomplete"
    finally:
        os.chdir(cwd)
