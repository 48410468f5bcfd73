"""Every malformed file in tests/data/bad gives a located error, or is skipped and counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsaver.cli import app
from recsaver.data.sources import BadInputError, ReadReport, detect_review_layout, iter_reviews

BAD = Path(__file__).resolve().parent / "bad"
EXPECTED = json.loads((BAD / "expected.json").read_text())


def read_all(path: Path, on_bad_line: str = "error") -> tuple[list, ReadReport]:
    report = ReadReport()
    layout = "2018" if path.name.startswith("v2018") else detect_review_layout(path)
    return list(iter_reviews(path, layout, report, on_bad_line)), report  # type: ignore[arg-type]


def test_corpus_is_big_enough() -> None:
    assert len(EXPECTED) >= 20


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_error_names_file_line_and_field(name: str) -> None:
    exp = EXPECTED[name]
    with pytest.raises(BadInputError) as info:
        read_all(BAD / name)
    err = info.value
    assert err.path.endswith(name)
    assert err.line == exp["line"] or exp["line"] is None
    assert err.field == exp["field"]
    assert exp["contains"].lower() in str(err).lower()
    if exp["line"] is not None:
        assert f"{name}:{exp['line']}:" in str(err)


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e["line"] is not None))
def test_skip_mode_counts_the_bad_line(name: str) -> None:
    rows, report = read_all(BAD / name, "skip")
    assert len(rows) == 4  # the four valid lines around the bad one
    assert sum(report.skipped.values()) == 1
    assert report.first_skips and name in report.first_skips[0]


def test_truncated_gzip_in_skip_mode_keeps_what_was_read() -> None:
    rows, report = read_all(BAD / "truncated.jsonl.gz", "skip")
    assert 0 < len(rows) < 400
    assert report.skipped["record: truncated"] == 1


@pytest.mark.parametrize("name", ["rating_nan.jsonl", "non_utf8.jsonl", "non_utf8_key.jsonl", "truncated.jsonl.gz",
                                  "empty.jsonl"])
def test_cli_exits_nonzero_without_traceback(name: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "prepare", str(BAD / name), "--domain", "beauty",
                                      "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert name in result.output and "error" in result.output


def test_cli_skip_records_bad_lines_in_stats(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "prepare", str(BAD / "rating_nan.jsonl"), "--domain", "beauty",
                                      "--out", str(tmp_path), "--on-bad-line", "skip", "--min-history", "1",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["bad_lines"]["reviews"] == {"rating: invalid": 1}
    assert stats["counts"]["reviews_valid"] == 4
