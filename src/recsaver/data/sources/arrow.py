"""The columnar fast path for review dumps (pyarrow); anything doubtful falls back to `iter_reviews`."""

from __future__ import annotations

import codecs
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

from .lines import _GZIP_MAGIC, BadInputError, Layout, ReadReport


class FastPathUnavailable(Exception):
    """The bulk reader met something it cannot vouch for; the line-by-line reader takes over."""


class _ArrowFields(TypedDict):
    """JSON keys of one dump layout; `items` are tried in order, `mult` scales the timestamp to ms."""

    user: str
    items: tuple[str, ...]
    rating: str
    time: str
    mult: int
    title: str
    text: str


_ARROW_FIELDS: dict[str, _ArrowFields] = {
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


class _Utf8Checked(io.RawIOBase):
    """The decompressed bytes the JSON reader parses, checked as UTF-8 on their way in.

    Why: the reader validates only the columns it keeps, so invalid bytes in any other key or value
    ("text\\xff": ...) would pass unseen and the review would lose its field. Checking the stream the
    reader already pulls costs no second decompression; ASCII chunks skip the decoder. At the first
    invalid sequence the stream ends early and `bad` holds its decompressed byte offset.
    """

    def __init__(self, inner: Any):
        self.inner, self.offset = inner, 0
        self.bad: int | None = None
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.bad is not None:
            return b""
        data = self.inner.read(size if size is not None and size >= 0 else None)
        try:
            if not (data.isascii() and not self.decoder.getstate()[0]):
                self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as e:
            self.bad = self.offset + e.start
            return b""
        self.offset += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


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
    checked: _Utf8Checked | None = None
    try:
        checked = _Utf8Checked(pa.input_stream(str(path), compression=compression))
        reader = pj.open_json(pa.PythonFile(checked, mode="r"), read_options=pj.ReadOptions(block_size=block_size),
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
        if checked.bad is not None:
            raise FastPathUnavailable(f"invalid UTF-8 at decompressed byte {checked.bad}")
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, EOFError) as e:
        if checked is not None and checked.bad is not None:
            raise FastPathUnavailable(f"invalid UTF-8 at decompressed byte {checked.bad}") from None
        raise FastPathUnavailable(str(e)) from None
    hasher.join()
    if seq == 0:
        raise BadInputError(path, None, None, "empty file: no records", "empty")
    report.records, report.lines, report.sha256 = seq, seq, digest["sha256"]
