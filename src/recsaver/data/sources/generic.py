"""Users' own data for `recsaver data import`: a generic interactions table and an optional items table.

The schema (INTERACTION_FIELDS, ITEM_FIELDS; other item columns are extra prompt fields), the formats
(`table_format`) and `--map` are documented in the README ("Your own data"); the two rules:

Ratings: any number on the declared scale MIN..MAX (`--rating-scale`, default 1,5) is mapped linearly
to 1..5 and rounded half up: new = floor(1 + (old - MIN) * 4 / (MAX - MIN) + 1/2), in exact
arithmetic. A 1-10 scale: 1 -> 1, 2 -> 1, 3 -> 2, 6 -> 3, 8 -> 4, 10 -> 5.

Timestamps are stored as `data prepare` stores them: milliseconds since the epoch (the 2023 dumps' unit;
the 2014/2018 dumps' seconds are multiplied by 1000). An integer (or a cell of digits) below 10**11 is
seconds (dates before the year 5138), from there on milliseconds (dates after 3 March 1973); other text
is ISO-8601 (`2020-05-01`, `2020-05-01T13:45:00.250Z`), UTC when it names no zone, cut to the millisecond.
Times outside 1970..9999 are rejected.

Why the standard `csv` module over numbered lines rather than pyarrow's bulk readers: every error must
name the physical line (a quoted CSV cell may span lines, which the bulk readers do not report) and the
user's column, and `--on-bad-line skip` must skip one row and go on.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clean import clean_list, clean_text, parse_price
from ..records import Item
from .fields import _opt_text
from .lines import BadInputError, LineStream, OnBadLine, ReadReport, parse_record

if TYPE_CHECKING:
    from ..pipeline import PartWriter
    from ..prepare import PrepareConfig, Progress

INTERACTION_FIELDS = ("user_id", "item_id", "rating", "timestamp", "review_title", "review_text")
ITEM_FIELDS = ("item_id", "title", "brand", "categories", "description", "price")
SCHEMA_FIELDS = tuple(dict.fromkeys(INTERACTION_FIELDS + ITEM_FIELDS))
_REQUIRED = INTERACTION_FIELDS[:4]  # of those a table reads (the items table: item_id)
RESCALE_RULE = "new = floor(1 + (old - MIN) * 4 / (MAX - MIN) + 1/2): linear onto 1..5, rounded half up"
MS_FROM = 100_000_000_000
_MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TABLE_LIMIT = 1000  # distinct old ratings listed in stats.json (a continuous scale has many)

Row = tuple[int, dict[str, Any] | None, BadInputError | None]  # line (row for Parquet), record, or its error


def _plain(value: Fraction) -> int | float:
    return value.numerator if value.denominator == 1 else float(value)


@dataclass(frozen=True)
class RatingScale:
    """The declared rating scale MIN..MAX and its rescale onto 1..5 (the rule is RESCALE_RULE)."""

    low: Fraction
    high: Fraction

    @classmethod
    def parse(cls, text: str) -> RatingScale:
        try:
            low, high = (Fraction(part.strip()) for part in text.split(","))
        except ValueError:
            raise ValueError(f"rating_scale {text!r}: write MIN,MAX, e.g. 1,10") from None
        if not low < high:
            raise ValueError(f"rating_scale {text!r}: MIN must be below MAX")
        return cls(low, high)

    def rescale(self, value: Fraction) -> int:
        return math.floor(1 + (value - self.low) * 4 / (self.high - self.low) + Fraction(1, 2))

    def describe(self, seen: Counter[Fraction]) -> dict[str, Any]:
        """The scale, the rule and old -> new for the values seen (and how often each was seen)."""
        values = sorted(seen)[:_TABLE_LIMIT]
        return {"scale": [_plain(self.low), _plain(self.high)], "rule": RESCALE_RULE,
                "table": {str(_plain(v)): self.rescale(v) for v in values},
                "counts": {str(_plain(v)): seen[v] for v in values},
                "table_truncated": len(seen) > _TABLE_LIMIT}


def table_format(path: Path) -> str:
    """csv, jsonl or parquet, from the file name (`.gz` allowed for csv and jsonl)."""
    name = path.name.lower()
    for fmt, ends in (("csv", (".csv", ".csv.gz")), ("jsonl", (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")),
                      ("parquet", (".parquet", ".pq"))):
        if name.endswith(ends):
            return fmt
    raise BadInputError(path, None, None, "unknown table format: name the file .csv, .jsonl or .parquet "
                        "(.csv.gz and .jsonl.gz too)", "format")


class _Table:
    """Numbered records of one table file; `columns` is known up front for CSV and Parquet (None for JSONL)."""

    def __init__(self, path: Path, phase: str, progress: Progress | None) -> None:
        if not path.exists():
            raise BadInputError(path, None, None, "file not found", "missing")
        self.on_progress = (lambda done: progress(phase, done, path.stat().st_size)) if progress else None
        self.path, self.format = path, table_format(path)
        self.columns: list[str] | None = None  # from the header (CSV) or schema (Parquet); JSONL has none
        self.lines: int = 0
        self.sha256: str | None = None

    def rows(self) -> Iterator[Row]:
        if self.format == "parquet":
            yield from self._parquet()
            return
        stream = LineStream(self.path, self.on_progress)
        yield from self._csv(stream) if self.format == "csv" else self._jsonl(stream)
        self.lines, self.sha256 = stream.lines, stream.sha256

    def _jsonl(self, stream: LineStream) -> Iterator[Row]:
        for lineno, raw in stream:
            try:
                if raw.strip():
                    yield lineno, parse_record(raw, self.path, lineno), None
            except BadInputError as err:
                yield lineno, None, err

    def _csv(self, stream: LineStream) -> Iterator[Row]:
        path = self.path
        bad_utf8: dict[int, str] = {}

        def text_lines() -> Iterator[str]:
            for lineno, raw in stream:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    bad_utf8[lineno] = f"invalid UTF-8 at byte {e.start}"
                    text = raw.decode("utf-8", "replace")
                yield text.removeprefix("\ufeff") if lineno == 1 else text

        reader = csv.reader(text_lines())
        try:
            header = self.columns = next(reader)
        except csv.Error as e:
            raise BadInputError(path, 1, None, f"malformed CSV header ({e})", "malformed") from None
        dup = [c for c, n in Counter(header).items() if n > 1]
        if 1 in bad_utf8 or dup:
            raise BadInputError(path, 1, dup[0] if dup else None, bad_utf8.get(1) or "a column named twice")
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield start, None, BadInputError(path, start, None, f"malformed CSV ({e})", "malformed")
                continue
            if not cells:
                continue
            bad = next((n for n in range(start, reader.line_num + 1) if n in bad_utf8), None)
            if bad is not None:
                yield bad, None, BadInputError(path, bad, None, bad_utf8[bad], "encoding")
            elif len(cells) != len(header):
                yield start, None, BadInputError(path, start, None, f"{len(cells)} cells, the header has "
                                                 f"{len(header)}", "malformed")
            else:
                yield start, {c: v if v != "" else None for c, v in zip(header, cells)}, None

    def _parquet(self) -> Iterator[Row]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self.path)
        except (pa.ArrowInvalid, OSError) as e:
            raise BadInputError(self.path, None, None, f"not a readable Parquet file ({e})", "malformed") from None
        self.columns = pf.schema_arrow.names
        total, row, size = max(pf.metadata.num_rows, 1), 0, self.path.stat().st_size
        for batch in pf.iter_batches(batch_size=65_536):
            for rec in batch.to_pylist():
                row += 1
                yield row, rec, None
            if self.on_progress:
                self.on_progress(size * row // total)
        with open(self.path, "rb") as f:
            self.lines, self.sha256 = row, hashlib.file_digest(f, "sha256").hexdigest()

    def need(self, columns: dict[str, str], fields: tuple[str, ...], mapped: dict[str, str]) -> None:
        """A missing required column, or an explicitly mapped one, is an error at the header (line 1)."""
        for name in (*(n for n in fields if n in _REQUIRED), *(n for n in mapped if n in fields)):
            if self.columns is not None and columns[name] not in self.columns:
                hint = "" if name in mapped else f"; map it with --map {name}=COLUMN"
                raise BadInputError(self.path, 1, columns[name], f"no such column (schema field {name}{hint}; "
                                    f"columns: {', '.join(self.columns[:20])})", "missing")

    def other_columns(self, columns: dict[str, str], fields: tuple[str, ...]) -> list[str]:
        """The columns no schema field of `fields` reads (for JSONL, which has no header: none)."""
        used = {columns[f] for f in fields}
        return [c for c in self.columns or () if c not in used]


def _id(value: Any, path: Path, lineno: int, name: str) -> str:
    """A non-empty string, or an integer (Parquet and JSON ids often are) as its digits."""
    if isinstance(value, str) and value.strip() or isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None:
        raise BadInputError(path, lineno, name, "missing required field", "missing")
    raise BadInputError(path, lineno, name, f"expected a non-empty string, got {value!r}")


def _number(value: Any) -> Fraction | None:
    """`value` as an exact finite number (NaN and infinities are none: Fraction refuses them), or None."""
    text = str(value).strip()
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal) or "/" in text:
        return None  # "/": Fraction would read "4/5" as a number
    with contextlib.suppress(ValueError, ZeroDivisionError):
        return Fraction(text)
    return None


def to_millis(value: Any, path: Path, lineno: int, name: str) -> int:
    """A timestamp cell as milliseconds since the epoch (the rule is in the module docstring)."""
    if value is None:
        raise BadInputError(path, lineno, name, "missing required field (a Unix or ISO-8601 time)", "missing")
    moment: datetime | None = None
    number, text = None, value.strip() if isinstance(value, str) else None
    if isinstance(value, date):
        moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif text is not None and text.isascii() and text.isdigit():
        number = int(text)
    elif text is not None:
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(text)
    if moment is not None:
        millis = (moment.replace(tzinfo=moment.tzinfo or UTC) - _EPOCH) // timedelta(milliseconds=1)
    elif number is not None:
        millis = number if number >= MS_FROM else number * 1000
    else:
        raise BadInputError(path, lineno, name, "expected seconds or milliseconds since the epoch, or an ISO-8601 "
                            f"date/time, got {value!r}")
    if not 0 <= millis <= _MS_MAX:
        raise BadInputError(path, lineno, name, f"time outside 1970..9999: {value!r}")
    return millis


def _categories(value: Any) -> Any:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return json.loads(value) if value.lstrip().startswith("[") else value.split("|")
        return value.split("|")
    return value if value is not None else ()


def _extra_text(value: Any, cap: int) -> str | None:
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value if v is not None)
    elif value is not None and not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, dict) else str(value)
    return clean_text(value, cap)


class TableSource:
    """`data import`'s source for the pipeline (see `prepare.Source`): the tables read row by row."""

    def __init__(self, interactions: Path, items: Path | None, mapping: dict[str, str], scale: RatingScale) -> None:
        self.interactions, self.items = Path(interactions), None if items is None else Path(items)
        for path in filter(None, (self.interactions, self.items)):
            table_format(path)  # an unknown format fails before any reading
        self.mapping, self.scale = dict(mapping), scale
        self.columns = {f: mapping.get(f, f) for f in SCHEMA_FIELDS}
        self.report, self.items_report = ReadReport(), ReadReport()
        self.seen: Counter[Fraction] = Counter()
        self.extra_columns: list[str] = []
        self.ignored_columns: list[str] = []
        self.missing_item = Item()

    def _rating(self, value: Any, path: Path, lineno: int, name: str) -> Fraction:
        """The rating as an exact number on the declared scale (rescaled by the caller)."""
        lo, hi = _plain(self.scale.low), _plain(self.scale.high)
        if value is None:
            raise BadInputError(path, lineno, name, f"missing required field (a rating {lo}-{hi})", "missing")
        number = _number(value)
        if number is None:
            raise BadInputError(path, lineno, name, f"expected a number {lo}-{hi}, got {value!r}")
        if not self.scale.low <= number <= self.scale.high:
            raise BadInputError(path, lineno, name, f"{value!r} is outside the declared scale {lo}-{hi} "
                                "(--rating-scale)")
        return number

    def _records(self, table: _Table, report: ReadReport, on_bad_line: OnBadLine, fields: tuple[str, ...],
                 convert: Callable[[int, dict[str, Any]], Any]) -> Iterator[Any]:
        """Converted records; a bad one is raised or skipped and counted, and a truncated gzip in skip mode
        keeps what was read, as in `data prepare`. The columns are checked before the first row."""
        try:
            for k, (lineno, rec, err) in enumerate(table.rows()):
                if k == 0:
                    table.need(self.columns, fields, self.mapping)
                try:
                    if err is not None or rec is None:
                        raise err or BadInputError(table.path, lineno, None, "no record")
                    value = convert(lineno, rec)
                except BadInputError as bad:
                    report.skip_or_raise(bad, on_bad_line)
                    continue
                report.records += 1
                yield value
        except BadInputError as err:
            if err.kind != "truncated" or on_bad_line == "error":
                raise
            report.skip(err)
        report.lines, report.sha256 = table.lines, table.sha256

    def write_reviews(self, parts: PartWriter, cfg: PrepareConfig, progress: Progress | None) -> int:
        path, col = self.interactions, self.columns

        def convert(line: int, rec: dict[str, Any]) -> tuple[Any, ...]:
            user, item = (_id(rec.get(col[f]), path, line, col[f]) for f in ("user_id", "item_id"))
            rating = self._rating(rec.get(col["rating"]), path, line, col["rating"])
            row = (line, user, item, self.scale.rescale(rating),
                   to_millis(rec.get(col["timestamp"]), path, line, col["timestamp"]),
                   _opt_text(rec.get(col["review_title"]), path, line, col["review_title"]),
                   _opt_text(rec.get(col["review_text"]), path, line, col["review_text"]))
            self.seen[rating] += 1  # a valid row's rating: the stats.json table
            return row

        table = _Table(path, "read interactions", progress)
        for row in self._records(table, self.report, cfg.bad_lines, INTERACTION_FIELDS, convert):
            parts.add(row)
        parts.flush()
        self.ignored_columns = table.other_columns(col, INTERACTION_FIELDS)
        if parts.parts == 0:
            raise ValueError(f"{path}: no valid interactions (lines read: {self.report.lines}, "
                             f"skipped: {dict(self.report.skipped)})")
        return self.report.records

    def read_items(self, wanted: set[str], cfg: PrepareConfig, progress: Progress | None) -> dict[str, Item]:
        """The wanted items of the items table; extra columns become `Item.extra`, in column order."""
        if self.items is None:
            return {}
        path, col, caps = self.items, self.columns, cfg.field_caps
        known = {col[f] for f in ITEM_FIELDS}
        extras: dict[str, None] = {}  # every extra column, in order (JSONL: every key of a wanted item)

        def convert(line: int, rec: dict[str, Any]) -> tuple[str, Item, dict[str, str | None]] | None:
            item_id = _id(rec.get(col["item_id"]), path, line, col["item_id"])
            if item_id not in wanted:
                return None
            extra = {k: _extra_text(v, caps.description) for k, v in rec.items() if k not in known}
            extras.update(dict.fromkeys(extra))
            return item_id, Item(
                title=clean_text(rec.get(col["title"]), caps.title),
                brand=clean_text(rec.get(col["brand"]), caps.brand),
                categories=clean_list(_categories(rec.get(col["categories"])), max_chars=caps.category),
                description=clean_text(rec.get(col["description"]), caps.description),
                price=parse_price(rec.get(col["price"])),
            ), extra

        table = _Table(path, "read items", progress)
        found = {f[0]: f[1:] for f in self._records(table, self.items_report, cfg.bad_lines, ITEM_FIELDS, convert)
                 if f}
        self.extra_columns = list(dict.fromkeys([*table.other_columns(col, ITEM_FIELDS), *extras]))
        # Every item shows every extra column (a missing value prints N/A), as it does the built-in fields.
        self.missing_item = Item(extra=tuple((name, None) for name in self.extra_columns))
        return {i: replace(item, extra=tuple((n, extra.get(n)) for n in self.extra_columns))
                for i, (item, extra) in found.items()}

    def describe(self) -> dict[str, Any]:
        def table(path: Path, report: ReadReport, fields: tuple[str, ...]) -> dict[str, Any]:
            return {"path": str(path), "sha256": report.sha256, "format": table_format(path), "lines": report.lines,
                    "columns": {f: self.columns[f] for f in fields}}

        return {"interactions": {**table(self.interactions, self.report, INTERACTION_FIELDS),
                                 "ignored_columns": self.ignored_columns},
                "items": None if self.items is None else {**table(self.items, self.items_report, ITEM_FIELDS),
                                                          "extra_columns": self.extra_columns},
                "mapping": self.mapping}

    def bad_lines(self) -> dict[str, Any]:
        return {"interactions": dict(self.report.skipped), "items": dict(self.items_report.skipped),
                "examples": self.report.first_skips + self.items_report.first_skips}

    def extra_stats(self) -> dict[str, Any]:
        return {"ratings": self.scale.describe(self.seen)}
