"""Streaming readers for the Amazon review dumps (2014, 2018 and 2023 layouts) and for generic tables.

Dumps are recognised by content, never by name: gzip by its magic bytes, the
layout by the keys of the first record (a generic table's format, which users
choose, comes from its file name). Every problem is reported as a
`BadInputError` that names the file, the line and the field.

The package: `lines` (numbered lines, records, errors, the read report), `layouts`
(detection), `fields` (field checks), `reviews` (the line-by-line review reader), `meta`
(items), `arrow` (the columnar fast path for reviews), `generic` (users' own interactions and items
tables, CSV/JSONL/Parquet, for `data import`).
"""

from __future__ import annotations

from .arrow import FastPathUnavailable, iter_review_batches
from .generic import SCHEMA_FIELDS, RatingScale, TableSource, table_format, to_millis
from .layouts import detect_meta_layout, detect_review_layout
from .lines import BadInputError, Layout, LineStream, OnBadLine, ReadReport, parse_record
from .meta import FieldCaps, item_from_meta, read_meta
from .reviews import ReviewRow, iter_reviews

__all__ = ["SCHEMA_FIELDS", "BadInputError", "FastPathUnavailable", "FieldCaps", "Layout", "LineStream", "OnBadLine",
           "RatingScale", "ReadReport", "ReviewRow", "TableSource", "detect_meta_layout", "detect_review_layout",
           "item_from_meta", "iter_review_batches", "iter_reviews", "parse_record", "read_meta", "table_format",
           "to_millis"]
