"""`study import`: spreadsheet and Label Studio CSVs, our own export read back, row/column errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsaver.study.answers import Answer
from recsaver.study.app import answers_csv
from recsaver.study.db import StudyDB
from recsaver.study.importer import ImportError_, import_csv

from .test_create import cli


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_label_studio_export_is_imported(study: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = study
    with StudyDB(folder) as db:
        items = db.items()
    f = write_csv(tmp_path / "ls.csv", ["id", "annotator", "item_id", "coherence", "faithful", "insightfulness",
                                        "error_types", "comment", "lead_time"], [
        [1, "ann@lab.org", items[0].item_id, 4, "No", 2,
         json.dumps({"choices": ["Incorrect product statistics", "Arithmetic error"]}), "counts wrong", 12.5],
        [2, "ann@lab.org", items[1].item_id, "5.0", "Yes", 3, "", "", 8.0],
        [3, "bo", items[0].item_id, 3, "false", 3, "other", "", 2.0],
    ])
    result = CliRunner().invoke(cli(), ["study", "import", str(folder), str(f)])
    assert result.exit_code == 0, result.output
    assert "imported 3 answers" in result.output
    with StudyDB(folder) as db:
        rows = {(r["rater"], r["item_id"]): r for r in db.answer_rows()}
        assert {r.name: r.source for r in db.raters()} == {"ann@lab.org": "import", "bo": "import"}
        assert db.rater_by_token("") is None
    first = rows[("ann@lab.org", items[0].item_id)]
    assert (first["coherence"], first["faithful"], first["err_stats"], first["err_arith"], first["err_info"]) == \
        (4, 0, 1, 1, 0)
    assert rows[("ann@lab.org", items[1].item_id)]["coherence"] == 5
    assert rows[("bo", items[0].item_id)]["err_other"] == 1 and all(r["source"] == "import" for r in rows.values())


def test_our_export_reads_back_into_a_fresh_study(study: tuple[Path, str], handmade_run: Path,
                                                  tmp_path: Path) -> None:
    from recsaver.study.create import CreateConfig, create_study

    folder, _ = study
    with StudyDB(folder) as db:
        ann, _, _ = db.add_rater("ann")
        for pos, item, _ in db.assigned(ann.rater_id)[:3]:
            db.save_answer(ann.rater_id, item.item_id, Answer(pos % 5 + 1, pos != 2, 3,
                                                              frozenset({"info"}) if pos == 2 else frozenset(),
                                                              "-starts with a minus"))
        exported = answers_csv(db)
        before = [{k: r[k] for k in ("item_id", "coherence", "faithful", "err_info", "note")} for r in db.answer_rows()]
    (tmp_path / "export.csv").write_text(exported)
    create_study(CreateConfig(runs=(str(handmade_run),), per_domain=10), tmp_path / "fresh")
    assert import_csv(tmp_path / "fresh", tmp_path / "export.csv").rows == 3
    with StudyDB(tmp_path / "fresh") as db:
        after = [{k: r[k] for k in ("item_id", "coherence", "faithful", "err_info", "note")} for r in db.answer_rows()]
    assert after == before and after[0]["note"] == "-starts with a minus"


def test_every_bad_row_is_reported_with_row_and_column_and_nothing_lands(study: tuple[Path, str],
                                                                          tmp_path: Path) -> None:
    folder, _ = study
    f = write_csv(tmp_path / "bad.csv", ["rater", "item_id", "coherence", "faithfulness", "insightfulness",
                                         "error_types"], [
        ["ann", 1, 4, "yes", 3, ""],          # fine
        ["ann", 2, 7, "yes", 3, ""],          # row 3: coherence out of range
        ["ann", 99, 4, "yes", 3, ""],         # row 4: no such item
        ["ann", 3, 4, "perhaps", 3, ""],      # row 5: faithfulness
        ["ann", 4, 4, "no", 3, ""],           # row 6: unfaithful without error type
        ["ann", 5, 4, "yes", 3, "stats"],     # row 7: faithful with an error type
        ["ann", 1, 2, "yes", 2, ""],          # row 8: duplicate of row 2
        ["", 6, 4, "yes", "", "typo"],        # row 9: empty rater, unknown error type
    ])
    with pytest.raises(ImportError_) as e:
        import_csv(folder, f)
    msg = str(e.value)
    for expected in ("row 3, column 'coherence': must be a whole number from 1 to 5, got '7'",
                     "row 4, column 'item_id': no study item '99'",
                     "row 5, column 'faithfulness': must be yes or no",
                     "row 6, column 'error_types': an unfaithful answer needs at least one error type",
                     "row 7, column 'error_types': an answer marked faithful cannot list error types",
                     "row 8, column 'rater': rater 'ann' already rated item 1 in row 2",
                     "row 9, column 'rater': empty rater name",
                     "row 9, column 'error_types': unknown error type"):
        assert expected in msg, (expected, msg)
    assert msg.startswith("8 problem(s), nothing imported") or "nothing imported" in msg
    with StudyDB(folder) as db:
        assert db.answer_rows() == [] and db.raters() == []


def test_missing_columns_clashes_and_example_ids(study: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = study
    with pytest.raises(ImportError_, match=r"missing column\(s\) \['insightfulness'\]"):
        import_csv(folder, write_csv(tmp_path / "a.csv", ["rater", "item_id", "coherence", "faithful"], []))
    with StudyDB(folder) as db:
        item = db.items()[0]
    one = write_csv(tmp_path / "b.csv", ["annotator", "example_id", "coherence", "faithful", "insight",
                                         "err_stats", "err_info", "err_arith", "err_other"],
                    [["zed", item.example_id, 2, "no", 1, "1", "0", "no", ""]])
    assert import_csv(folder, one).rows == 1
    with pytest.raises(ImportError_, match=r"already has an answer for item .*use --replace"):
        import_csv(folder, one)
    assert import_csv(folder, one, replace=True).replaced == 1
    result = CliRunner().invoke(cli(), ["study", "import", str(folder), str(tmp_path / "none.csv")])
    assert result.exit_code == 2 and "none.csv: no such file" in result.output
