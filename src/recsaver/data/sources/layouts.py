"""Which Amazon layout (2023, 2018 or 2014) a review or metadata file has, from its first record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .lines import BadInputError, Layout, LineStream, parse_record


def _first_record(path: Path) -> dict[str, Any]:
    for lineno, raw in LineStream(path):
        if raw.strip():
            return parse_record(raw, path, lineno)
        if lineno > 100:
            break
    raise BadInputError(path, None, None, "empty file: no records", "empty")


def detect_review_layout(path: Path) -> Layout:
    rec = _first_record(path)
    if "user_id" in rec and "rating" in rec:
        return "2023"
    if "reviewerID" in rec and "overall" in rec:
        return "2014" if "helpful" in rec and "vote" not in rec and "verified" not in rec else "2018"
    if "parent_asin" in rec or "asin" in rec and "title" in rec and "overall" not in rec:
        raise BadInputError(path, 1, None, "this looks like a metadata file, not reviews (swap the arguments?)")
    raise BadInputError(
        path, 1, None, f"unknown review layout; keys {sorted(rec)[:12]} match neither 2023 (user_id, rating) "
        "nor 2014/2018 (reviewerID, overall)"
    )


def detect_meta_layout(path: Path) -> Layout:
    rec = _first_record(path)
    if "parent_asin" in rec:
        return "2023"
    if "asin" in rec:
        return "2014" if "categories" in rec and "category" not in rec else "2018"
    raise BadInputError(path, 1, None, f"unknown metadata layout; keys {sorted(rec)[:12]} have no asin/parent_asin")
