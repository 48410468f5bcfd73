"""Streaming readers for the Amazon review dumps (2014, 2018 and 2023 layouts).

Files are recognised by content, never by name: gzip by its magic bytes, the
layout by the keys of the first record. Every problem is reported as a
`BadInputError` that names the file, the line and the field.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import json
import math
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Literal

import orjson

from .clean import clean_list, clean_text, parse_price
from .records import Item

Layout = Literal["2023", "2018", "2014"]
OnBadLine = Literal["error", "skip"]
_GZIP_MAGIC = b"\x1f\x8b"


class BadInputError(Exception):
    """A problem in an input file, located precisely enough to fix it."""

    def __init__(self, path: Path | str, line: int | None, field: str | None, message: str, kind: str = "invalid"):
        self.path, self.line, self.field, self.message, self.kind = str(path), line, field, message, kind
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        what = f"field '{self.field}': " if self.field else ""
        return f"{where}: {what}{self.message}"

    @property
    def reason(self) -> str:
        """A short key to count skipped lines by, e.g. `rating: invalid` or `record: malformed`."""
        return f"{self.field or 'record'}: {self.kind}"


class _HashingReader(io.RawIOBase):
    """Wraps the raw file so sha256 and progress come from the one read pass."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.sha256, self.bytes_read = raw, hashlib.sha256(), 0

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.bytes_read += n
        return n

    def readable(self) -> bool:
        return True


@dataclass
class LineStream:
    """Numbered raw lines of a plain or gzipped file, with its sha256 at the end."""

    path: Path
    on_progress: Callable[[int], None] | None = None
    sha256: str | None = None
    size: int = 0
    lines: int = 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        path = self.path
        if not path.exists():
            raise BadInputError(path, None, None, "file not found", "missing")
        self.size = path.stat().st_size
        if self.size == 0:
            raise BadInputError(path, None, None, "empty file: no records", "empty")
        with open(path, "rb") as raw:
            reader = _HashingReader(raw)
            is_gzip = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            buffered = io.BufferedReader(reader, buffer_size=1 << 20)
            stream: Any = gzip.GzipFile(fileobj=buffered, mode="rb") if is_gzip else buffered
            lineno = 0
            try:
                for lineno, line in enumerate(stream, 1):
                    if self.on_progress and lineno % 50_000 == 0:
                        self.on_progress(reader.bytes_read)
                    yield lineno, line
            except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
                raise BadInputError(
                    path, lineno + 1, None, f"truncated or corrupt gzip stream after line {lineno} ({e})", "truncated"
                ) from None
            self.lines = lineno
            if self.on_progress:
                self.on_progress(reader.bytes_read)
            self.sha256 = reader.sha256.hexdigest()
        if self.lines == 0:
            raise BadInputError(path, None, None, "empty file: no records", "empty")


def parse_record(raw: bytes, path: Path | str, lineno: int) -> dict[str, Any]:
    """JSON first (fast); 2014 meta lines are Python literals; JSON with NaN is tolerated
    here so that a NaN rating is reported as a bad rating, not as garbage."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadInputError(path, lineno, None, f"invalid UTF-8 at byte {e.start}", "encoding") from None
        obj = None
        for parse in (json.loads, ast.literal_eval):
            try:
                obj = parse(text)
                break
            except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                continue
        if obj is None:
            snippet = text.strip()[:60]
            raise BadInputError(path, lineno, None, f"malformed record, not JSON or a Python literal: {snippet!r}", "malformed")
    if not isinstance(obj, dict):
        raise BadInputError(path, lineno, None, f"expected a JSON object, got {type(obj).__name__}", "malformed")
    return obj


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


# Field names per layout: user, item, rating, time, time unit (ms multiplier), review title, review text.
_REVIEW_FIELDS: dict[str, tuple[str, str, str, str, int, str, str]] = {
    "2023": ("user_id", "parent_asin", "rating", "timestamp", 1, "title", "text"),
    "2018": ("reviewerID", "asin", "overall", "unixReviewTime", 1000, "summary", "reviewText"),
    "2014": ("reviewerID", "asin", "overall", "unixReviewTime", 1000, "summary", "reviewText"),
}

ReviewRow = tuple[int, str, str, int, int, str | None, str | None]  # seq, user, item, rating, ts_ms, title, text


@dataclass
class ReadReport:
    """What a streaming read saw: counts of lines, skips by reason, and the file hash."""

    lines: int = 0
    records: int = 0
    skipped: Counter = field(default_factory=Counter)
    sha256: str | None = None
    first_skips: list[str] = field(default_factory=list)

    def skip(self, err: BadInputError) -> None:
        self.skipped[err.reason] += 1
        if len(self.first_skips) < 20:
            self.first_skips.append(str(err))


def _rating(value: Any, path: Path, lineno: int, name: str) -> int:
    if value is None:
        raise BadInputError(path, lineno, name, "missing required field (a rating 1-5)", "missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise BadInputError(path, lineno, name, f"expected a number 1-5, got {value!r}") from None
        else:
            raise BadInputError(path, lineno, name, f"expected a number 1-5, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value != int(value) or not 1 <= value <= 5:
        raise BadInputError(path, lineno, name, f"expected a whole rating 1-5, got {value!r}")
    return int(value)


def _time(value: Any, path: Path, lineno: int, name: str) -> int:
    if value is None:
        raise BadInputError(path, lineno, name, "missing required field (a Unix time)", "missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise BadInputError(path, lineno, name, f"expected an integer Unix time, got {value!r}")
    if value < 0:
        raise BadInputError(path, lineno, name, f"negative time {value!r}")
    return int(value)


def _ident(value: Any, path: Path, lineno: int, name: str) -> str:
    if isinstance(value, str) and value.strip():
        return value
    if value is None:
        raise BadInputError(path, lineno, name, "missing required field", "missing")
    raise BadInputError(path, lineno, name, f"expected a non-empty string, got {value!r}")


def _opt_text(value: Any, path: Path, lineno: int, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    raise BadInputError(path, lineno, name, f"expected text, got {type(value).__name__}")


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
            if on_bad_line == "error":
                raise
            report.skip(err)
            continue
        report.records += 1
        yield row


@dataclass(frozen=True)
class FieldCaps:
    """Character caps per field; descriptions in real dumps can be huge."""

    title: int = 200
    brand: int = 120
    category: int = 60
    description: int = 600
    review_title: int = 200
    review_text: int = 1200


_MOVIE_PEOPLE = ("Director", "Directors", "Actors", "Starring", "Contributor", "Studio", "Producers")


def _joined(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _brand(rec: dict[str, Any], layout: Layout, domain: str, caps: FieldCaps) -> str | None:
    details = rec.get("details") if isinstance(rec.get("details"), dict) else {}
    candidates = [details.get("Brand"), rec.get("store"), rec.get("brand")]
    if domain == "movies":
        people = [f"{k}: {_joined(details[k])}" for k in _MOVIE_PEOPLE if details.get(k)]
        candidates.append("; ".join(people) if people else None)
    for c in candidates:
        text = clean_text(c, caps.brand)
        if text:
            return text
    return None


def item_from_meta(rec: dict[str, Any], layout: Layout, domain: str, caps: FieldCaps) -> Item:
    cats = rec.get("categories") if layout != "2018" else rec.get("category")
    return Item(
        title=clean_text(rec.get("title"), caps.title),
        brand=_brand(rec, layout, domain, caps),
        categories=clean_list(cats or (), max_chars=caps.category),
        description=clean_text(rec.get("description"), caps.description),
        price=parse_price(rec.get("price")),
    )


def read_meta(
    path: Path,
    domain: str,
    wanted: set[str] | None,
    report: ReadReport,
    caps: FieldCaps = FieldCaps(),
    on_bad_line: OnBadLine = "error",
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Item]:
    """Items keyed by the id reviews use (parent_asin in 2023, asin before); only `wanted` ones kept."""
    layout = detect_meta_layout(path)
    key = "parent_asin" if layout == "2023" else "asin"
    items: dict[str, Item] = {}
    stream = LineStream(path, on_progress)
    for lineno, raw in stream:
        if not raw.strip():
            continue
        try:
            rec = parse_record(raw, path, lineno)
            item_id = _ident(rec.get(key), path, lineno, key)
        except BadInputError as err:
            if on_bad_line == "error":
                raise
            report.skip(err)
            continue
        report.records += 1
        if wanted is None or item_id in wanted:
            items[item_id] = item_from_meta(rec, layout, domain, caps)
    report.lines = stream.lines
    report.sha256 = stream.sha256
    return items
