"""Rec-SAVER references (Algorithm 1): verification rules, the summary, and a real SmolLM2 run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsaver.cli import app
from recsaver.steps.references import kept, summarize


def test_verification_rules() -> None:
    assert kept("exact", 4, 4) and not kept("exact", 5, 4) and not kept("exact", None, 4)
    assert kept("1-off", 5, 4) and kept("1-off", 3, 4) and not kept("1-off", 2, 4)
    assert kept("none", None, 4) and kept("none", 1, 5)


def _candidate(kept_: bool, removed: int = 0, text: str = "t", scrubbed: str = "t") -> dict:
    return {"text": text, "scrubbed_text": scrubbed, "removed_sentences": ["x"] * removed,
            "verify_rating": None, "kept": kept_}


def test_summary_by_hand() -> None:
    rows = [
        {"rating": 5, "references": ["a", "b"], "candidates": [_candidate(True), _candidate(True, 1),
                                                               _candidate(False)]},
        {"rating": 1, "references": [], "candidates": [_candidate(False, 2, "leaky", ""), _candidate(False)]},
    ]
    s = summarize(rows, "exact")
    assert s["coverage"] == 0.5 and s["mean_pool_size"] == 1.0
    assert s["pass_rate_per_label"]["5"] == pytest.approx(2 / 3) and s["pass_rate_per_label"]["1"] == 0.0
    assert s["pass_rate_per_label"]["3"] is None
    assert s["scrub"] == {"sentences_removed": 3, "candidates_with_removals": 2, "candidates_emptied": 1}
    assert s["pool_size_histogram"] == {"0": 1, "2": 1}


@pytest.mark.slow
def test_references_end_to_end_with_smollm2(small_beauty: Path, tmp_path: Path) -> None:
    out = tmp_path / "refs"

    def args(dest: Path) -> list[str]:
        return ["references", "--data", str(small_beauty), "--limit", "1", "--samples", "2", "--max-tokens", "40",
                "--grammar", "--out", str(dest), "--cache", str(tmp_path / "c.sqlite"), "--no-progress"]

    result = CliRunner().invoke(app, args(out))
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in (out / "references.jsonl").read_text().splitlines()]
    assert len(row["candidates"]) == 2
    for c in row["candidates"]:
        assert set(c) >= {"text", "scrubbed_text", "removed_sentences", "verify_rating", "kept"}
        assert c["kept"] == (c["verify_rating"] == row["rating"])
    assert row["references"] == [c["scrubbed_text"] for c in row["candidates"] if c["kept"]]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["examples"] == 1 and summary["verify"] == "exact"
    run = json.loads((out / "run.json").read_text())
    verified = sum(1 for c in row["candidates"] if c["scrubbed_text"])  # empty explanations are not verified
    assert run["ledger"]["requests"] == 2 + verified and run["model_id"].startswith("llamacpp/smollm2-135m")
    # Resumable: a second run is served from the cache.
    again = CliRunner().invoke(app, args(tmp_path / "again"))
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "again" / "run.json").read_text())["ledger"]["cache_misses"] == 0
    assert (tmp_path / "again" / "references.jsonl").read_text() == (out / "references.jsonl").read_text()
