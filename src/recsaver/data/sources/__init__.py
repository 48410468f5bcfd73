"""Streaming readers for the Amazon review dumps (2014, 2018 and 2023 layouts).

Files are recognised by content, never by name: gzip by its magic bytes, the
layout by the keys of the first record. Every problem is reported as a
`BadInputError` that names the file, the line and the field.

The package: `lines` (numbered lines, records, errors, the read report), `layouts`
(detection), `fields` (field checks), `reviews` (the line-by-line review reader), `meta`
(items), `arrow` (the columnar fast path for reviews).
"""

from __future__ import annotations

from .arrow import FastPathUnavailable, iter_review_batches
from .layouts import detect_meta_layout, detect_review_layout
from .lines import BadInputError, Layout, LineStream, OnBadLine, ReadReport, parse_record
from .meta import FieldCaps, item_from_meta, read_meta
from .reviews import ReviewRow, iter_reviews

__all__ = ["BadInputError", "FastPathUnavailable", "FieldCaps", "Layout", "LineStream", "OnBadLine", "ReadReport",
           "ReviewRow", "detect_meta_layout", "detect_review_layout", "item_from_meta", "iter_review_batches",
           "iter_reviews", "parse_record", "read_meta"]
