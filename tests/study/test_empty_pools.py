"""Empty Rec-SAVER pools are an error with advice, never an empty table or a 0-item study (issue 15, point 3)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from recsaver.cli import app
from recsaver.data.records import write_json, write_jsonl
from recsaver.steps.references import summarize


def rejected_pools(run: Path, refs: Path, keep: set[int] = frozenset()) -> None:
    """A references folder as `recsaver references --verify exact` writes it when the verifier rejects every
    explanation (as SmolLM2 does), except for the gold labels in `keep`."""
    rows = []
    for line in (run / "predictions.jsonl").read_text().splitlines():
        p = json.loads(line)
        ok = p["rating_true"] in keep
        candidates = [{"text": "They like it.", "scrubbed_text": "They like it.", "removed_sentences": [],
                       "error": None, "status": "ok",
                       "verify_rating": p["rating_true"] if ok else p["rating_true"] % 5 + 1,
                       "kept": ok}]
        rows.append({"example_id": p["example_id"], "rating": p["rating_true"],
                     "references": ["They like it."] if ok else [], "failed_calls": 0, "candidates": candidates})
    write_jsonl(refs / "references.jsonl", rows)
    write_json(refs / "summary.json", summarize(rows, "exact"))


def test_score_with_every_pool_empty_exits_2_with_pass_rates_and_advice(handmade_run: Path, tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    rejected_pools(handmade_run, refs)
    result = CliRunner().invoke(app, ["score", "--predictions", str(handmade_run), "--references", str(refs),
                                      "--metrics", "bleu", "--out", str(tmp_path / "scores")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "every reference pool" in text and "references.jsonl" in text
    assert "pass rate per gold label: 1: 0%" in text or "pass rate per gold label: 1: -" in text
    assert "--verify 1-off" in text and "stronger verifier" in text
    assert not (tmp_path / "scores" / "text_scores.jsonl").exists()


def test_study_create_refuses_zero_items_and_warns_on_skew(handmade_run: Path, tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    rejected_pools(handmade_run, refs)
    result = CliRunner().invoke(app, ["study", "create", "--predictions", str(handmade_run), "--references",
                                      str(refs), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "0 items" in text and "--verify 1-off" in text
    assert not (tmp_path / "s" / "study.sqlite").exists()

    rejected_pools(handmade_run, refs, keep={4, 5})  # only the positive labels verified: the usual pattern
    result = CliRunner().invoke(app, ["study", "create", "--predictions", str(handmade_run), "--references",
                                      str(refs), "--out", str(tmp_path / "s2")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "skewed by gold rating" in text and "1: 2 of 2" in text
