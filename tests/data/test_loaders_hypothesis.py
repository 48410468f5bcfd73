"""Property tests: whatever a line holds, the loader yields a clean row or a located BadInputError."""

from __future__ import annotations

import json
import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsaver.data.sources import BadInputError, ReadReport, iter_reviews, parse_record

anything = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**13), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                                max_size=2),
)

review = st.fixed_dictionaries(
    {},
    optional={
        "user_id": anything, "parent_asin": anything, "asin": anything, "rating": anything,
        "timestamp": anything, "title": anything, "text": anything,
    },
)


def write(tmp: Path, raw: bytes) -> Path:
    path = tmp / "reviews.jsonl"
    path.write_bytes(raw)
    return path


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rec=review)
def test_any_record_gives_a_valid_row_or_a_located_error(rec: dict, tmp_path: Path) -> None:
    line = json.dumps(rec, allow_nan=True).encode()
    path = write(tmp_path, line + b"\n")
    try:
        rows = list(iter_reviews(path, "2023", ReadReport()))
    except BadInputError as err:
        assert err.path == str(path)
        assert err.line == 1
        assert err.field in {None, "user_id", "parent_asin", "rating", "timestamp", "title", "text"}
        return
    (seq, user, item, rating, ts, title, text), = rows
    assert seq == 1 and user == rec["user_id"] and isinstance(user, str) and user.strip()
    assert item in (rec.get("parent_asin"), rec.get("asin"))
    assert rating in (1, 2, 3, 4, 5) and rating == rec["rating"]
    assert isinstance(ts, int) and ts >= 0
    assert title is None or isinstance(title, str)
    assert text is None or isinstance(text, str)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_parser(raw: bytes) -> None:
    try:
        obj = parse_record(raw, "x.jsonl", 7)
    except BadInputError as err:
        assert err.line == 7 and "x.jsonl:7" in str(err)
    else:
        assert isinstance(obj, dict)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ratings=st.lists(st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0, math.nan, 0.0, 2.5]), min_size=1, max_size=20))
def test_skip_mode_keeps_every_good_line_and_counts_every_bad_one(ratings: list[float], tmp_path: Path) -> None:
    lines = [json.dumps({"user_id": "U", "parent_asin": f"B{i}", "rating": r, "timestamp": i}, allow_nan=True)
             for i, r in enumerate(ratings)]
    path = write(tmp_path, "\n".join(lines).encode())
    report = ReadReport()
    rows = list(iter_reviews(path, "2023", report, "skip"))
    good = [r for r in ratings if r in (1.0, 2.0, 3.0, 4.0, 5.0)]
    assert [r[3] for r in rows] == [int(r) for r in good]
    assert sum(report.skipped.values()) == len(ratings) - len(good)
