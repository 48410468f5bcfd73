"""Writes tests/data/bad/: malformed dump files and the error each must produce.

Run it again after changing a case: `python tests/data/make_bad_corpus.py`.
Each case is a small 2023- or 2018-layout review file with valid lines around
one bad one; `expected.json` says which line and field the error must name.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent / "bad"


def review23(i: int, **over: object) -> dict:
    rec = {"rating": 4.0, "title": f"Nice {i}", "text": f"Works well for me, take {i}.", "images": [],
           "asin": f"B0TEST{i:04d}", "parent_asin": f"B0TEST{i:04d}", "user_id": "AETESTUSER000000000000000001",
           "timestamp": 1600000000000 + i * 86_400_000, "helpful_vote": 0, "verified_purchase": True}
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not _DROP}


def review18(i: int, **over: object) -> dict:
    rec = {"overall": 5.0, "verified": True, "reviewTime": "09 1, 2016", "reviewerID": "A3TESTUSER0001",
           "asin": f"B0TEST{i:04d}", "reviewerName": "Tester", "reviewText": f"Fine {i}", "summary": "Ok",
           "unixReviewTime": 1472688000 + i * 86400}
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not _DROP}


_DROP = object()


def lines(bad: bytes, make=review23, before: int = 2, after: int = 2) -> bytes:
    good = [json.dumps(make(i)).encode() for i in range(before + after)]
    return b"\n".join(good[:before] + [bad] + good[before:]) + b"\n"


def dumps(rec: dict) -> bytes:
    return json.dumps(rec).encode()


# name -> (file bytes, expected line, expected field or None, words the message must contain)
CASES: dict[str, tuple[bytes, int | None, str | None, str]] = {
    "malformed_json.jsonl": (lines(b'{"rating": 5.0, "title": "cut'), 3, None, "malformed"),
    "trailing_garbage.jsonl": (lines(dumps(review23(9)) + b" xyz"), 3, None, "malformed"),
    "array_line.jsonl": (lines(b"[1, 2, 3]"), 3, None, "JSON object"),
    "missing_user.jsonl": (lines(dumps(review23(9, user_id=_DROP))), 3, "user_id", "missing"),
    "missing_rating.jsonl": (lines(dumps(review23(9, rating=_DROP))), 3, "rating", "1-5"),
    "missing_timestamp.jsonl": (lines(dumps(review23(9, timestamp=_DROP))), 3, "timestamp", "Unix time"),
    "missing_item.jsonl": (lines(dumps(review23(9, parent_asin=_DROP, asin=_DROP))), 3, "parent_asin", "missing"),
    "rating_string.jsonl": (lines(dumps(review23(9, rating="five"))), 3, "rating", "five"),
    "rating_nan.jsonl": (lines(dumps(review23(9)).replace(b'"rating": 4.0', b'"rating": NaN')), 3, "rating", "nan"),
    "rating_out_of_range.jsonl": (lines(dumps(review23(9, rating=7.0))), 3, "rating", "1-5"),
    "rating_fraction.jsonl": (lines(dumps(review23(9, rating=3.5))), 3, "rating", "whole"),
    "rating_null.jsonl": (lines(dumps(review23(9, rating=None))), 3, "rating", "missing"),
    "rating_bool.jsonl": (lines(dumps(review23(9, rating=True))), 3, "rating", "1-5"),
    "timestamp_string.jsonl": (lines(dumps(review23(9, timestamp="yesterday"))), 3, "timestamp", "yesterday"),
    "timestamp_negative.jsonl": (lines(dumps(review23(9, timestamp=-5))), 3, "timestamp", "negative"),
    "user_id_number.jsonl": (lines(dumps(review23(9, user_id=12345))), 3, "user_id", "string"),
    "text_wrong_type.jsonl": (lines(dumps(review23(9, text=123))), 3, "text", "expected text"),
    "title_wrong_type.jsonl": (lines(dumps(review23(9, title=["a"]))), 3, "title", "expected text"),
    "non_utf8.jsonl": (lines(dumps(review23(9, text="caf")).replace(b'"caf"', b'"caf\xe9 \xff"')), 3, None, "UTF-8"),
    # invalid bytes inside a key: the columnar reader ignores unknown keys, so this needs its own check
    "non_utf8_key.jsonl": (lines(dumps(review23(9)).replace(b'"text"', b'"text\xff\xfe"')), 3, None, "UTF-8"),
    "empty.jsonl": (b"", None, None, "empty"),
    "empty.jsonl.gz": (gzip.compress(b""), None, None, "empty"),
    "truncated.jsonl.gz": (gzip.compress(b"".join(dumps(review23(i)) + b"\n" for i in range(400)))[:2500],
                           None, None, "truncated"),
    "v2018_missing_overall.json": (lines(dumps(review18(9, overall=_DROP)), review18), 3, "overall", "missing"),
    "v2018_time_text.json": (lines(dumps(review18(9, unixReviewTime="09 1, 2016")), review18), 3,
                             "unixReviewTime", "Unix time"),
    "v2018_reviewer_null.json": (lines(dumps(review18(9, reviewerID=None)), review18), 3, "reviewerID", "missing"),
}


def corrupt_gzip() -> bytes:
    data = bytearray(gzip.compress(b"".join(dumps(review23(i)) + b"\n" for i in range(300))))
    mid = len(data) // 2
    data[mid:mid + 40] = bytes(40)
    return bytes(data)


# Zeroed bytes may decode into a garbled line before the CRC check fails: either error is right.
CASES["corrupt.jsonl.gz"] = (corrupt_gzip(), None, None, "corrupt.jsonl.gz")


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, (content, line, field, words) in CASES.items():
        (HERE / name).write_bytes(content)
        expected[name] = {"line": line, "field": field, "contains": words}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"wrote {len(CASES)} cases to {HERE}")


if __name__ == "__main__":
    main()
