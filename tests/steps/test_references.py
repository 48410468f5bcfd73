"""Rec-SAVER references (Algorithm 1): verification rules, the summary, and a real SmolLM2 run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsaver.cli import app
from recsaver.steps.references import negative_targets, rebuild_references, summarize


def test_negative_targets() -> None:
    assert negative_targets(1, 2, 2) == [3, 3] and negative_targets(5, 2, 1) == [3]
    assert negative_targets(3, 2, 3) == [5, 1, 5]  # both sides fit: alternate
    assert negative_targets(3, 3, 2) == [1, 5]  # nothing 3 away fits: clipped to the scale's ends
    assert negative_targets(4, 2, 0) == []


def _candidate(rating: int | None, removed: int = 0, text: str = "t", scrubbed: str = "t") -> dict:
    return {"text": text, "scrubbed_text": scrubbed, "removed_sentences": ["x"] * removed,
            "verify_rating": rating, "status": "ok"}


def test_summary_by_hand() -> None:
    rows = [
        {"rating": 5, "references": ["a", "b"], "candidates": [_candidate(5), _candidate(5, 1), _candidate(4)]},
        {"rating": 1, "references": [], "candidates": [_candidate(None, 2, "leaky", ""), _candidate(3)]},
    ]
    s = summarize(rows, "exact")
    assert s["coverage"] == 0.5 and s["mean_pool_size"] == 1.0
    assert s["pass_rate_per_label"]["5"] == pytest.approx(2 / 3) and s["pass_rate_per_label"]["1"] == 0.0
    assert s["pass_rate_per_label"]["3"] is None
    assert s["scrub"] == {"sentences_removed": 3, "candidates_with_removals": 2, "candidates_emptied": 1}
    assert s["pool_size_histogram"] == {"0": 1, "2": 1}
    assert s["negatives"] == 0 and s["false_accept_rate"] is None
    assert set(s["audit"]["modes"]) == {"none", "exact", "1-off"}  # no stored probabilities: no prob modes


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


@pytest.mark.slow
def test_every_mode_with_smollm2_and_rebuild_without_a_model(small_beauty: Path, tmp_path: Path) -> None:
    """One real run (2 examples, a negative control, a judge) stores P(1..5) and the content-free P(1..5); a run
    under each mode equals the rebuild of the first under that mode, and rebuild needs no model or cache."""
    cache = tmp_path / "c.sqlite"

    def run(verify: str) -> Path:
        out = tmp_path / verify.replace(":", "_")
        result = CliRunner().invoke(app, [
            "references", "--data", str(small_beauty), "--limit", "2", "--samples", "2", "--negatives", "1",
            "--max-tokens", "40", "--verify", verify, "--judge-model", "llamacpp/smollm2-135m", "--out", str(out),
            "--cache", str(cache), "--no-progress"])
        assert result.exit_code == 0, result.output
        return out

    first = run("exact")
    rows = [json.loads(line) for line in (first / "references.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert len(row["content_free_probs"]) == 5 and sum(row["content_free_probs"]) == pytest.approx(1.0)
        assert sum(row["judge_content_free_probs"]) == pytest.approx(1.0) and row["judge_content_free_error"] is None
        assert [c["negative"] for c in row["candidates"]] == [False, False, True]
        assert row["candidates"][2]["target"] == negative_targets(row["rating"], 2, 1)[0]
        for c in row["candidates"]:
            if c["scrubbed_text"]:
                assert sum(c["verify_probs"]) == pytest.approx(1.0) and len(c["judge_probs"]) == 5
                # greedy under the grammar: the generated rating is the argmax of the same distribution
                assert c["verify_rating"] == max(range(5), key=lambda i: c["verify_probs"][i]) + 1
    cache.rename(tmp_path / "moved.sqlite")  # rebuild reads the run only: no cache, no model
    for verify in ("1-off", "none", "calibrated", "prob:0.3"):
        rebuilt = tmp_path / f"rebuilt-{verify.replace(':', '_')}"
        result = CliRunner().invoke(app, ["references", "rebuild", str(first), "--verify", verify, "--out",
                                          str(rebuilt)])
        assert result.exit_code == 0, result.output
        assert not cache.exists()
        (tmp_path / "moved.sqlite").rename(cache)
        direct = run(verify)
        assert json.loads((direct / "run.json").read_text())["ledger"]["cache_misses"] == 0
        cache.rename(tmp_path / "moved.sqlite")
        pool = [json.loads(line)["references"] for line in (direct / "references.jsonl").read_text().splitlines()]
        assert pool == [json.loads(line)["references"]
                        for line in (rebuilt / "references.jsonl").read_text().splitlines()]
        assert (json.loads((rebuilt / "summary.json").read_text())["audit"]
                == json.loads((direct / "summary.json").read_text())["audit"])
    rebuilt = tmp_path / "rebuilt-calibrated"
    audit = CliRunner().invoke(app, ["references", "audit", str(first), str(rebuilt), "--confusion", "calibrated",
                                     "--json", str(tmp_path / "audit.json")])
    assert audit.exit_code == 0 and "calibrated" in audit.output and "faithfulness" in audit.output, audit.output
    # a rebuilt pool shares every candidate with its source: its audit is said to be the same, not printed twice
    assert f"{rebuilt}: the same audit as {first} (not repeated)" in " ".join(audit.output.split()), audit.output
    assert audit.output.count("rows = rating explained") == 1
    assert set(json.loads((tmp_path / "audit.json").read_text())) == {str(first), str(rebuilt)}
    report = CliRunner().invoke(app, ["report", str(first), "--out", str(tmp_path / "report.html")])
    assert report.exit_code == 0, report.output
    md = (tmp_path / "report.md").read_text()
    assert "### Verification audit" in md and "| calibrated |" in md
    assert "Writer faithfulness" in md and "| raw | " in md and "| calibrated | " in md, md
    assert "Writer faithfulness" in (tmp_path / "report.html").read_text()


def test_rebuild_explains_what_is_missing(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    row = {"example_id": "e", "rating": 4, "references": [], "failed_calls": 0, "candidates": [
        {"text": "t", "scrubbed_text": "t", "removed_sentences": [], "verify_rating": 4, "status": "ok"}]}
    (old / "references.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match="needs the verifier's P\\(1..5\\).*before they were stored"):
        rebuild_references(old, "calibrated", tmp_path / "new")
    with pytest.raises(ValueError, match="other than the source"):
        rebuild_references(old, "1-off", old)
    assert rebuild_references(old, "1-off", tmp_path / "new")["pass_rate_per_label"]["4"] == 1.0
