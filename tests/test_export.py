"""`recsaver export RUN --hf DIR --parquet FILE`: rows loaded back equal the run's JSONL rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsaver.cli import app
from recsaver.store import RunStore

datasets = pytest.importorskip("datasets")
pq = pytest.importorskip("pyarrow.parquet")


def jsonl_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def export_and_load(run: Path, tmp_path: Path) -> tuple[list[dict], list[dict]]:
    hf, parquet = tmp_path / "hf", tmp_path / "records.parquet"
    result = CliRunner().invoke(app, ["export", str(run), "--hf", str(hf), "--parquet", str(parquet)])
    assert result.exit_code == 0, result.output
    return datasets.load_from_disk(str(hf)).to_list(), pq.read_table(str(parquet)).to_pylist()


def test_export_predict_run(small_beauty: Path, tmp_path: Path) -> None:
    """A real SmolLM2 predict run, exported and loaded back with datasets and with pyarrow."""
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["predict", "--data", str(small_beauty), "--limit", "2", "--max-tokens", "24",
                                      "--cache", str(tmp_path / "c.sqlite"), "--out", str(run), "--no-progress",
                                      "--format", "parquet"])
    assert result.exit_code == 0, result.output
    rows = jsonl_rows(run / "predictions.jsonl")
    assert len(rows) == 2 and any(r["probs"] for r in rows)
    assert "predictions.parquet" in result.output
    assert pq.read_table(str(run / "predictions.parquet")).to_pylist() == rows  # --format parquet: same rows
    from_hf, from_parquet = export_and_load(run, tmp_path)
    assert from_hf == rows
    assert from_parquet == rows


def test_export_references_keeps_nested_candidates(tmp_path: Path) -> None:
    run = tmp_path / "refs"
    candidate = {"target": 4, "negative": False, "text": "Soft.", "scrubbed_text": "Soft.", "removed_sentences": [],
                 "error": None, "status": "ok", "verify_rating": 4, "verify_probs": [0.1, 0.1, 0.1, 0.6, 0.1],
                 "verify_mass": 0.9, "kept": True}
    rows = [{"example_id": f"e{i}", "rating": 4, "references": ["Soft."] * i, "candidates": [candidate] * (i + 1)}
            for i in range(3)]
    RunStore(run).write_references(rows)
    from_hf, from_parquet = export_and_load(run, tmp_path)
    assert from_hf == rows and from_parquet == rows


def test_export_needs_an_output_and_records(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    none = CliRunner().invoke(app, ["export", str(tmp_path / "empty"), "--parquet", str(tmp_path / "x.parquet")])
    assert none.exit_code == 2 and "no records to export" in none.output
    nothing = CliRunner().invoke(app, ["export", str(tmp_path / "empty")])
    assert nothing.exit_code == 2 and "--hf" in nothing.output


def test_format_parquet_on_steps_without_a_model(small_beauty: Path, tmp_path: Path) -> None:
    """`--format parquet` on data prepare, baseline and score: each JSONL table also as Parquet, same rows."""
    from tests.conftest import DUMPS

    reviews, meta, _ = DUMPS["beauty2018"]
    data = tmp_path / "data"
    prepared = CliRunner().invoke(app, ["data", "prepare", str(reviews), "--domain", "beauty", "--train-per-label",
                                        "3", "--test-per-label", "2", "--out", str(data), "--no-progress",
                                        "--format", "parquet"])
    assert prepared.exit_code == 0, prepared.output
    for split in ("train", "test"):
        assert pq.read_table(str(data / f"{split}.parquet")).to_pylist() == jsonl_rows(data / f"{split}.jsonl")

    base = tmp_path / "base"
    result = CliRunner().invoke(app, ["baseline", "--data", str(small_beauty), "--out", str(base),
                                      "--format", "parquet"])
    assert result.exit_code == 0, result.output
    assert pq.read_table(str(base / "predictions.parquet")).to_pylist() == jsonl_rows(base / "predictions.jsonl")
    assert not (base / "metrics.parquet").exists()  # JSON documents stay JSON

    refs = tmp_path / "refs"
    ids = [r["example_id"] for r in jsonl_rows(base / "predictions.jsonl")]
    RunStore(refs).write_references([{"example_id": i, "rating": 4, "references": ["Gentle on the skin, as the user "
                                      "likes."], "candidates": []} for i in ids])
    outputs = tmp_path / "mine.jsonl"
    outputs.write_text("".join(json.dumps({"example_id": i, "text": "Gentle, and the user likes gentle soaps."}) + "\n"
                               for i in ids))
    scores = tmp_path / "scores"
    result = CliRunner().invoke(app, ["score", "--outputs", str(outputs), "--references", str(refs), "--metrics",
                                      "rouge1", "--resamples", "20", "--out", str(scores), "--format", "parquet"])
    assert result.exit_code == 0, result.output
    assert pq.read_table(str(scores / "text_scores.parquet")).to_pylist() == jsonl_rows(scores / "text_scores.jsonl")


def test_format_parquet_walks_an_experiment_and_refuses_other_formats(small_beauty: Path, tmp_path: Path) -> None:
    from recsaver.parquet import write_parquet_tables

    cell = tmp_path / "exp" / "beauty" / "baseline"
    result = CliRunner().invoke(app, ["baseline", "--data", str(small_beauty), "--out", str(cell)])
    assert result.exit_code == 0 and not (cell / "predictions.parquet").exists()  # jsonl is the default
    written = write_parquet_tables(tmp_path / "exp", recursive=True)  # what `experiment run --format parquet` does
    assert written == [cell / "predictions.parquet"]
    bad = CliRunner().invoke(app, ["baseline", "--data", str(small_beauty), "--out", str(cell), "--format", "csv"])
    assert bad.exit_code == 2 and "csv" in bad.output
    no_out = CliRunner().invoke(app, ["score", "--predictions", str(cell), "--references", str(cell), "--format",
                                      "parquet"])
    assert no_out.exit_code == 2 and "give --out" in no_out.output
