"""The line-by-line review reader: validated `ReviewRow`s, bad lines raised or skipped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from .fields import _ident, _opt_text, _rating, _time
from .lines import BadInputError, Layout, LineStream, OnBadLine, ReadReport, parse_record

# Field names per layout: user, item, rating, time, time unit (ms multiplier), review title, review text.
_REVIEW_FIELDS: dict[str, tuple[str, str, str, str, int, str, str]] = {
    "2023": ("user_id", "parent_asin", "rating", "timestamp", 1, "title", "text"),
    "2018": ("reviewerID", "asin", "overall", "unixReviewTime", 1000, "summary", "reviewText"),
    "2014": ("reviewerID", "asin", "overall", "unixReviewTime", 1000, "summary", "reviewText"),
}

ReviewRow = tuple[int, str, str, int, int, str | None, str | None]  # seq, user, item, rating, ts_ms, title, text


def iter_reviews(
    path: Path,
    layout: Layout,
    report: ReadReport,
    on_bad_line: OnBadLine = "error",
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[ReviewRow]:
    """Yield validated review rows; `seq` is the line number, which keeps the file order on ties."""
    stream = LineStream(path, on_progress)
    try:
        yield from _review_rows(stream, path, layout, report, on_bad_line)
    except BadInputError as err:
        # A truncated download keeps what was read when the user asked to skip bad input.
        if err.kind != "truncated" or on_bad_line == "error":
            raise
        report.skip(err)
    report.lines = stream.lines
    report.sha256 = stream.sha256


def _review_rows(
    stream: LineStream, path: Path, layout: Layout, report: ReadReport, on_bad_line: OnBadLine
) -> Iterator[ReviewRow]:
    user_f, item_f, rating_f, time_f, time_mult, title_f, text_f = _REVIEW_FIELDS[layout]
    for lineno, raw in stream:
        if not raw.strip():
            continue
        try:
            rec = parse_record(raw, path, lineno)
            item = rec.get(item_f) or (rec.get("asin") if layout == "2023" else None)
            row = (
                lineno,
                _ident(rec.get(user_f), path, lineno, user_f),
                _ident(item, path, lineno, item_f),
                _rating(rec.get(rating_f), path, lineno, rating_f),
                _time(rec.get(time_f), path, lineno, time_f) * time_mult,
                _opt_text(rec.get(title_f), path, lineno, title_f),
                _opt_text(rec.get(text_f), path, lineno, text_f),
            )
        except BadInputError as err:
            report.skip_or_raise(err, on_bad_line)
            continue
        report.records += 1
        yield row
