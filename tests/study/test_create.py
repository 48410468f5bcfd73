"""`study create`: balanced sampling on real examples, what raters see, and clear refusals."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsaver.cli.study import register
from recsaver.data.records import load_examples, write_jsonl
from recsaver.prompts import PromptBuilder
from recsaver.steps.runs import write_run
from recsaver.study.create import REDACTED, CreateConfig, create_study, redact_prediction, split_prompt
from recsaver.study.db import StudyDB

from .conftest import LEAK


def cli():
    import typer

    app = typer.Typer()
    register(app)
    return app


def test_items_are_balanced_by_gold_rating_and_shown_as_the_model_saw_them(study: tuple[Path, str],
                                                                           small_beauty: Path) -> None:
    folder, _ = study
    examples = {e.example_id: e for e in load_examples(small_beauty / "test.jsonl")}
    with StudyDB(folder) as db:
        items = db.items()
        assert sqlite3.connect(folder / "study.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sorted(i.rating_true for i in items) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    builder = PromptBuilder("beauty")
    for item in items:
        history, new_item = split_prompt(builder.rating_prompt(examples[item.example_id]))
        assert item.history == history and item.new_item == new_item
        assert item.history in builder.rating_prompt(examples[item.example_id])
        assert "User Rating:" in item.history  # the past ratings the model reasoned from stay
        assert "User Rating" not in item.new_item and "User Review" not in item.new_item
        assert LEAK not in item.reasoning and REDACTED in item.reasoning and item.redacted == 1
        assert item.model == "handmade/test"


def test_per_domain_smaller_than_the_pool_takes_one_per_label_and_warns_when_short(handmade_run: Path,
                                                                                   tmp_path: Path) -> None:
    five = create_study(CreateConfig(runs=(str(handmade_run),), per_domain=5), tmp_path / "a")
    assert five.per_domain == {"beauty": {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}} and not five.warnings
    big = create_study(CreateConfig(runs=(str(handmade_run),), per_domain=50), tmp_path / "b")
    assert big.items == 10 and any("only 10 of 50" in w for w in big.warnings)


def test_references_filter_and_the_cli_prints_an_admin_link(handmade_run: Path, tmp_path: Path) -> None:
    preds = [line for line in (handmade_run / "predictions.jsonl").read_text().splitlines()]
    import json

    ids = [json.loads(p)["example_id"] for p in preds]
    write_jsonl(tmp_path / "refs" / "references.jsonl",
                [{"example_id": e, "references": ["A reference."] if k < 3 else []} for k, e in enumerate(ids)])
    result = CliRunner().invoke(cli(), ["study", "create", "--predictions", str(handmade_run), "--references",
                                        str(tmp_path / "refs"), "--out", str(tmp_path / "s"), "--base-url",
                                        "http://127.0.0.1:9999"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:9999/admin/login/" in result.output
    token = result.output.split("/admin/login/")[1].split()[0]
    with StudyDB(tmp_path / "s") as db:
        assert {i.example_id for i in db.items()} == set(ids[:3])
        assert db.check_admin(token) and not db.check_admin(token[:-1] + "x")
        assert token not in (tmp_path / "s" / "study.sqlite").read_bytes().decode("latin-1")
    again = CliRunner().invoke(cli(), ["study", "create", "--predictions", str(handmade_run), "--out",
                                       str(tmp_path / "s")])
    assert again.exit_code == 2 and "already exists" in again.output


def test_a_run_without_reasoning_is_refused_with_its_path(small_beauty: Path, tmp_path: Path) -> None:
    from recsaver.steps.baseline import run_baseline

    run_baseline(small_beauty, "test", tmp_path / "base")
    result = CliRunner().invoke(cli(), ["study", "create", "--predictions", str(tmp_path / "base"), "--out",
                                        str(tmp_path / "s")])
    assert result.exit_code == 2 and "no prediction has a reasoning text" in result.output
    assert str(tmp_path / "base") in result.output


def test_missing_run_json_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run.json"):
        create_study(CreateConfig(runs=(str(tmp_path),)), tmp_path / "s")


def test_history_items_dropped_to_fit_are_dropped_for_raters_too(small_beauty: Path, tmp_path: Path) -> None:
    from recsaver.data.records import Prediction

    (ex, *_) = load_examples(small_beauty / "test.jsonl")
    write_jsonl(tmp_path / "run" / "predictions.jsonl",
                [Prediction(ex.example_id, ex.rating, 3, reasoning="They like it.").to_dict()])
    write_run(tmp_path / "run", step="predict", config={"data": str(small_beauty), "ablation": "no-review",
                                                        "model": "m"},
              extra={"history_items_dropped_to_fit": {ex.example_id: 2}})
    create_study(CreateConfig(runs=(str(tmp_path / "run"),)), tmp_path / "s")
    with StudyDB(tmp_path / "s") as db:
        (item,) = db.items()
    assert item.history.count("Title:") == len(ex.history) - 2
    assert "User Review" not in item.history  # the run's ablation is rendered too


@pytest.mark.parametrize("text, expected, n", [
    ("They love serums.\n\n### Rating ###\n4", "They love serums.", 1),
    ("They rated the serum 5 stars. So the new product will likely get 4 stars.",
     f"They rated the serum 5 stars. {REDACTED}", 1),
    ("Rating: 5", "", 1),
    ("Cheap and cheerful. I would rate it a 2/5! Enjoy.", f"Cheap and cheerful. {REDACTED} Enjoy.", 1),
    ("Scores for this brand were mixed in the history.", "Scores for this brand were mixed in the history.", 0),
])
def test_redaction_removes_only_the_predicted_rating(text: str, expected: str, n: int) -> None:
    assert redact_prediction(text) == (expected, n)


def test_raters_add_prints_a_working_link_and_list_shows_progress(study: tuple[Path, str]) -> None:
    folder, _ = study
    names = ("ann", "bob", "cy", "dee")
    outputs = [CliRunner().invoke(cli(), ["study", "raters", "add", str(folder), n, "--base-url", "http://h:1"])
               for n in names]
    assert all(o.exit_code == 0 for o in outputs)
    assert "ann: 10 items" in outputs[0].output and "http://h:1/login/" in outputs[0].output
    assert "every item already has its raters" in outputs[3].output  # 3 raters per item
    token = outputs[0].output.split("/login/")[1].split()[0]
    with StudyDB(folder) as db:
        assert db.rater_by_token(token).name == "ann" and db.rater_by_token(token + "x") is None
    dup = CliRunner().invoke(cli(), ["study", "raters", "add", str(folder), "ann"])
    assert dup.exit_code == 2 and "already exists" in dup.output
    listed = CliRunner().invoke(cli(), ["study", "raters", "list", str(folder)])
    assert listed.exit_code == 0 and all(n in listed.output for n in names)
    missing = CliRunner().invoke(cli(), ["study", "raters", "list", str(folder.parent / "nope")])
    assert missing.exit_code == 2 and "no study database" in missing.output
