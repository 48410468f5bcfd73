"""Numbered raw lines of a dump (plain or gzip, hashed in the same pass), parsed records, and errors."""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import json
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson

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

    def skip_or_raise(self, err: BadInputError, on_bad_line: str) -> None:
        """`--on-bad-line error` stops at the first bad line (the error names file, line and field)."""
        if on_bad_line == "error":
            raise err
        self.skip(err)


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
            raise BadInputError(path, lineno, None, f"malformed record, not JSON or a Python literal: {snippet!r}",
                                "malformed") from None
    if not isinstance(obj, dict):
        raise BadInputError(path, lineno, None, f"expected a JSON object, got {type(obj).__name__}", "malformed")
    return obj
