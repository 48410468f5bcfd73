"""`recsaver predict` end to end on real Beauty examples with the real SmolLM2 through llama.cpp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsaver.cli import app
from recsaver.data.records import load_predictions
from recsaver.prompts import ABLATIONS

pytestmark = pytest.mark.slow


def run_cli(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def predict_args(data: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return ["predict", "--data", str(data), "--limit", "1", "--max-tokens", "24", "--out", str(out),
            "--cache", str(cache), "--no-progress", *extra]


@pytest.mark.parametrize("method", ["cot", "direct"])
def test_methods_write_the_three_files(method: str, small_beauty: Path, tmp_path: Path) -> None:
    run_cli(predict_args(small_beauty, tmp_path / "run", tmp_path / "c.sqlite", "--method", method, "--grammar"))
    (pred,) = load_predictions(tmp_path / "run" / "predictions.jsonl")
    # The grammar keeps the format; 24 tokens may end inside the reasoning, and then the rating
    # is forced from P(1..5) after an appended header.
    assert pred.rating_pred in (1, 2, 3, 4, 5)
    assert pred.rating_source in ("parsed", "forced")
    assert pred.probs is not None and abs(sum(pred.probs) - 1) < 1e-6
    if method == "direct":
        assert pred.rating_source == "parsed" and pred.raw.startswith("### Rating ###")
    else:
        assert pred.raw.startswith("### Reason ###")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["model_id"].startswith("llamacpp/smollm2-135m@sha256:")
    assert run["ledger"]["completion_tokens"] > 0 and run["ledger"]["cache_misses"] == 1
    assert run["config"]["method"] == method and run["data"]["sha256"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n"] == 1 and metrics["n_unparsed"] == 0
    assert metrics["format_ok_share"] + metrics["forced_rating_share"] == 1.0


@pytest.mark.parametrize("ablation", [a for a in ABLATIONS if a != "none"])
def test_every_ablation_runs_from_the_cli(ablation: str, small_beauty: Path, tmp_path: Path) -> None:
    run_cli(predict_args(small_beauty, tmp_path / "run", tmp_path / "c.sqlite", "--ablation", ablation))
    (pred,) = load_predictions(tmp_path / "run" / "predictions.jsonl")
    assert pred.raw  # the model answered; parsing may or may not succeed for SmolLM2 without a grammar


def test_rerun_is_served_from_the_cache_and_identical(small_beauty: Path, tmp_path: Path) -> None:
    args = predict_args(small_beauty, tmp_path / "a", tmp_path / "c.sqlite", "--samples", "2", "--temperature", "0.8")
    run_cli(args)
    args_b = predict_args(small_beauty, tmp_path / "b", tmp_path / "c.sqlite", "--samples", "2",
                          "--temperature", "0.8")
    run_cli(args_b)
    assert (tmp_path / "a/predictions.jsonl").read_bytes() == (tmp_path / "b/predictions.jsonl").read_bytes()
    ledger = json.loads((tmp_path / "b/run.json").read_text())["ledger"]
    assert ledger["cache_hits"] == 2 and ledger["cache_misses"] == 0
    samples = [json.loads(line) for line in (tmp_path / "a/samples.jsonl").read_text().splitlines()]
    assert [s["sample_index"] for s in samples] == [0, 1]


def test_degenerate_outputs_are_explained_not_just_scored() -> None:
    from recsaver.data.records import Prediction
    from recsaver.steps.predict import PredictConfig, quality_warnings

    cfg = PredictConfig(data="unused", grammar=False)
    forced_ones = [Prediction(f"e{k}", 5 - k % 2, 1, rating_source="forced") for k in range(6)]
    said = quality_warnings(cfg, forced_ones, format_ok=0.0)
    assert len(said) == 2 and "6 of 6 answers gave no rating" in said[0] and "--grammar" in said[0]
    assert "every prediction is 1" in said[1] and "[4, 5]" in said[1]
    healthy = [Prediction(f"e{k}", r, r, rating_source="parsed") for k, r in enumerate((1, 2, 4, 5))]
    assert quality_warnings(cfg, healthy, format_ok=1.0) == []
    failed = [Prediction("e", 3, None, status="failed", error="boom")]
    assert quality_warnings(cfg, failed, format_ok=0.0) == []  # a failure is reported as such, elsewhere
