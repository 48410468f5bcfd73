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
                                      "--cache", str(tmp_path / "c.sqlite"), "--out", str(run), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = jsonl_rows(run / "predictions.jsonl")
    assert len(rows) == 2 and any(r["probs"] for r in rows)
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
