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


def _quick_id(raw: bytes, needles: tuple[bytes, ...]) -> str | None:
    for needle in needles:
        start = raw.rfind(needle)
        if start >= 0:
            start += len(needle)
            end = raw.find(needle[-1:], start)
            if end > start:
                return raw[start:end].decode("utf-8", "replace")
    return None


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
    # Most meta lines describe items no example needs: find their id with a plain byte search
    # (memchr-fast; a regex over these long lines cost ~30 us each) and skip the full parse.
    # Only lines of wanted items are parsed and validated.
    needles = (f'"{key}": "'.encode(), f"'{key}': '".encode())
    items: dict[str, Item] = {}
    stream = LineStream(path, on_progress)
    for lineno, raw in stream:
        if not raw.strip():
            continue
        if wanted is not None:
            quick_id = _quick_id(raw, needles)
            if quick_id is not None and quick_id not in wanted:
                report.records += 1
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


class FastPathUnavailable(Exception):
    """The bulk reader met something it cannot vouch for; the line-by-line reader takes over."""


_ARROW_FIELDS = {
    "2023": {"user": "user_id", "items": ("parent_asin", "asin"), "rating": "rating", "time": "timestamp",
             "mult": 1, "title": "title", "text": "text"},
    "2018": {"user": "reviewerID", "items": ("asin",), "rating": "overall", "time": "unixReviewTime",
             "mult": 1000, "title": "summary", "text": "reviewText"},
}
_ARROW_FIELDS["2014"] = _ARROW_FIELDS["2018"]


def _sha256_in_background(path: Path) -> tuple[Any, dict[str, str]]:
    """Hash the file on a second thread (hashlib releases the GIL) while the reader parses it."""
    import threading

    out: dict[str, str] = {}

    def run() -> None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        out["sha256"] = h.hexdigest()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def iter_review_batches(path: Path, layout: Layout, report: ReadReport, block_size: int = 1 << 24) -> Iterator[Any]:
    """Columnar read with pyarrow: the fast path for well-formed dumps.

    Yields record batches in the `ReviewRow` layout (seq is the record's position in the file,
    which keeps file order on ties exactly as the line-by-line reader does). Any record it cannot
    vouch for (bad JSON, a wrong type, a missing field, a rating outside 1..5) raises
    `FastPathUnavailable`, and the caller re-reads with `iter_reviews`, which names the exact
    line and field. Why two readers: per-line Python validation costs ~20 us a review, which is
    minutes on a 10M-review dump; this path is C++ and multi-threaded.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    names = _ARROW_FIELDS[layout]
    schema = pa.schema([(names["user"], pa.string()), *[(i, pa.string()) for i in names["items"]],
                        (names["rating"], pa.float64()), (names["time"], pa.int64()),
                        (names["title"], pa.string()), (names["text"], pa.string())])
    size = path.stat().st_size
    if size == 0:
        raise BadInputError(path, None, None, "empty file: no records", "empty")
    with open(path, "rb") as f:
        compression = "gzip" if f.read(2) == _GZIP_MAGIC else None
    hasher, digest = _sha256_in_background(path)
    seq = 0
    try:
        stream = pa.input_stream(str(path), compression=compression)
        reader = pj.open_json(stream, read_options=pj.ReadOptions(block_size=block_size),
                              parse_options=pj.ParseOptions(explicit_schema=schema,
                                                            unexpected_field_behavior="ignore"))
        for batch in reader:
            batch.validate(full=True)  # rejects invalid UTF-8, which the JSON reader lets through
            n = batch.num_rows
            user = batch.column(names["user"])
            item = batch.column(names["items"][0])
            for extra in names["items"][1:]:
                item = pc.coalesce(item, batch.column(extra))
            rating = batch.column(names["rating"])
            ts = batch.column(names["time"])
            bad = pc.or_kleene(pc.is_null(user), pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(user)), 0))
            bad = pc.or_kleene(bad, pc.is_null(item))
            bad = pc.or_kleene(bad, pc.is_null(rating, nan_is_null=True))
            bad = pc.or_kleene(bad, pc.or_kleene(pc.less(rating, 1.0), pc.greater(rating, 5.0)))
            bad = pc.or_kleene(bad, pc.not_equal(rating, pc.floor(rating)))
            bad = pc.or_kleene(bad, pc.or_kleene(pc.is_null(ts), pc.less(ts, 0)))
            if pc.any(pc.fill_null(bad, True)).as_py():
                raise FastPathUnavailable("a record failed validation")
            seqs = pa.array(range(seq + 1, seq + n + 1), pa.int64())
            seq += n
            yield pa.record_batch(
                [seqs, user, item, pc.cast(rating, pa.int8()), pc.multiply(ts, names["mult"]),
                 batch.column(names["title"]), batch.column(names["text"])],
                names=["seq", "user_id", "item_id", "rating", "ts", "review_title", "review_text"],
            )
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, EOFError) as e:
        raise FastPathUnavailable(str(e)) from None
    hasher.join()
    if seq == 0:
        raise BadInputError(path, None, None, "empty file: no records", "empty")
    report.records, report.lines, report.sha256 = seq, seq, digest["sha256"]
