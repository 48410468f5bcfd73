"""`recsaver score`: a run's reasoning against a reference pool, through the CLI, with the real metrics."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from recsaver.cli import app
from recsaver.data.records import Prediction, write_jsonl

REASON = "The user loves fragrance-free moisturizers and dislikes strong scents, so this gentle cream fits."


def test_score_cli_splits_by_correctness_and_excludes_empty_pools(tmp_path: Path) -> None:
    run, refs = tmp_path / "run", tmp_path / "refs"
    preds = [
        Prediction("a", 5, 5, reasoning=REASON),                      # correct, identical to its reference
        Prediction("b", 2, 4, reasoning="They like perfume a lot."),   # incorrect
        Prediction("c", 3, 3, reasoning="Anything."),                  # empty pool: excluded
        Prediction("d", 1, None, reasoning=None),                      # unparsed, no reasoning: scores 0
    ]
    write_jsonl(run / "predictions.jsonl", (p.to_dict() for p in preds))
    write_jsonl(refs / "references.jsonl", [
        {"example_id": "a", "references": [REASON, "Another view."], "candidates": []},
        {"example_id": "b", "references": ["The user dislikes heavy fragrances in skin care."], "candidates": []},
        {"example_id": "c", "references": [], "candidates": []},
        {"example_id": "d", "references": ["Too greasy for this user."], "candidates": []},
    ])
    result = CliRunner().invoke(app, ["score", "--predictions", str(run), "--references", str(refs),
                                      "--metrics", "bleu,rouge1"])
    assert result.exit_code == 0, result.output
    out = json.loads((run / "text_metrics.json").read_text())
    assert out["overall"]["n_scored"] == 3 and out["excluded_empty_pool"] == ["c"]
    rows = {r["example_id"]: r for r in map(json.loads, (run / "text_scores.jsonl").read_text().splitlines())}
    assert rows["a"]["bleu"] == 1.0 and rows["a"]["rouge1"] == 1.0 and rows["a"]["correct"]
    assert rows["d"]["bleu"] == 0.0 and not rows["d"]["correct"]
    assert out["by_correctness"]["correct"]["metrics"]["rouge1"]["mean"] == 1.0
    assert out["by_correctness"]["incorrect"]["metrics"]["rouge1"]["n"] == 2
    assert "sacrebleu" in json.dumps(out["signature"])


def test_score_names_a_missing_references_file(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "predictions.jsonl", [Prediction("a", 5, 5, reasoning="x").to_dict()])
    result = CliRunner().invoke(app, ["score", "--predictions", str(tmp_path), "--references",
                                      str(tmp_path / "nope"), "--metrics", "bleu"])
    assert result.exit_code == 2 and "nope: no references" in result.output
