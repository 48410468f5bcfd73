"""`recsaver score --outputs`: any system's explanations against a real Rec-SAVER pool (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsaver.cli import app
from recsaver.data.sources import BadInputError
from recsaver.steps.external import load_outputs, split_thinking


@pytest.fixture(scope="module")
def refs(small_beauty: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real SmolLM2 references run on 2 Beauty examples, every scrubbed explanation kept (--verify none)."""
    out = tmp_path_factory.mktemp("refs") / "refs"
    result = CliRunner().invoke(app, ["references", "--data", str(small_beauty), "--limit", "2", "--samples", "2",
                                      "--max-tokens", "40", "--verify", "none", "--out", str(out), "--cache",
                                      str(out.parent / "c.sqlite"), "--no-progress"])
    assert result.exit_code == 0, result.output
    return out


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_split_thinking() -> None:
    assert split_thinking("<think>hmm, 5?</think>\nThey like mild soaps.") == ("hmm, 5?", "They like mild soaps.")
    assert split_thinking("plan</think> Answer") == ("plan", "Answer")  # the server dropped the opening tag
    assert split_thinking("No thinking here.") == (None, "No thinking here.")


def test_score_any_systems_outputs(refs: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (refs / "references.jsonl").read_text().splitlines()]
    first, second = rows[0], rows[1]
    text = "The user likes gentle products that suit sensitive skin."
    outputs = _write(tmp_path / "mine.jsonl", [
        {"id": first["example_id"], "explanation": text, "stars": first["rating"]},
        {"id": second["example_id"], "explanation": f"<think>Maybe a {second['rating']}.</think>{text}",
         "stars": str(second["rating"] % 5 + 1)},
        {"id": "not-in-the-pool", "explanation": text, "stars": 3},
    ])
    result = CliRunner().invoke(app, ["score", "--outputs", str(outputs), "--id-field", "id", "--text-field",
                                      "explanation", "--rating-field", "stars", "--references", str(refs),
                                      "--metrics", "bleu,rouge1", "--out", str(tmp_path / "scores")])
    assert result.exit_code == 0, result.output
    assert "1 of 3 outputs have no entry" in " ".join(result.output.split()) and "not-in-the-pool" in result.output
    metrics = json.loads((tmp_path / "scores" / "text_metrics.json").read_text())
    assert metrics["outputs_read"] == 3 and metrics["outputs_without_reference_entry"] == 1
    assert metrics["ids_without_reference_entry"] == ["not-in-the-pool"] and metrics["outputs_with_thinking"] == 1
    assert metrics["overall"]["n_scored"] == 2
    split = metrics["by_correctness"]
    assert split["correct"]["n_scored"] == 1 and split["incorrect"]["n_scored"] == 1
    lines = (tmp_path / "scores" / "text_scores.jsonl").read_text().splitlines()
    scores = {s["example_id"]: s for s in map(json.loads, lines)}
    assert scores[first["example_id"]]["correct"] is True and scores[second["example_id"]]["correct"] is False
    # The thinking is not scored: the same text without it scores the same against the same pool.
    plain = _write(tmp_path / "plain.jsonl", [{"example_id": second["example_id"], "text": text}])
    again = CliRunner().invoke(app, ["score", "--outputs", str(plain), "--references", str(refs), "--metrics",
                                     "bleu,rouge1", "--out", str(tmp_path / "plain")])
    assert again.exit_code == 0, again.output
    (row,) = map(json.loads, (tmp_path / "plain" / "text_scores.jsonl").read_text().splitlines())
    assert row["rouge1"] == scores[second["example_id"]]["rouge1"] and "correct" not in row
    # What was scored is kept beside its scores (thinking apart), and `recsaver view` shows it.
    shown = scores[second["example_id"]]
    assert shown["text"] == text and shown["thinking"] == f"Maybe a {second['rating']}." \
        and shown["rating"] == second["rating"] % 5 + 1 and "thinking" not in scores[first["example_id"]]
    from fastapi.testclient import TestClient

    from recsaver.view.app import create_app

    client = TestClient(create_app([tmp_path / "scores"]))
    (panel,) = client.get(f"/api/example/{second['example_id']}").json()["panels"]
    assert panel["kind"] == "score" and panel["text"] == text and panel["pred"] == second["rating"] % 5 + 1
    assert panel["correct"] is False and "rating" not in panel["metrics"] and "rouge1" in panel["metrics"]
    page = client.get(f"/example/{second['example_id']}").text
    assert "Explanation scored" in page and "sensitive skin" in page and "Thinking (not scored)" in page


@pytest.mark.parametrize(("line", "needle"), [
    ({"example_id": "a"}, "2: field 'text': missing"),
    ({"example_id": "a", "text": 3}, "2: field 'text': expected text"),
    ({"example_id": "x", "text": "t"}, "2: field 'example_id': 'x' again (first on line 1)"),
    ({"example_id": "a", "text": "t", "r": 7}, "2: field 'r': a rating must be a whole number from 1 to 5"),
    ([1, 2], "2: expected a JSON object"),
])
def test_bad_outputs_name_file_line_and_field(tmp_path: Path, line: object, needle: str) -> None:
    path = tmp_path / "o.jsonl"
    path.write_text(json.dumps({"example_id": "x", "text": "fine", "r": 4}) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(BadInputError) as err:
        load_outputs(path, "example_id", "text", "r")
    assert str(err.value).startswith(f"{path}:") and needle in str(err.value)


def test_score_needs_exactly_one_input(refs: Path) -> None:
    result = CliRunner().invoke(app, ["score", "--references", str(refs)])
    assert result.exit_code == 2 and "exactly one of --predictions" in " ".join(result.output.split())
