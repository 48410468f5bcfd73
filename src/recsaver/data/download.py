"""Download the official Amazon review dumps (McAuley lab), resuming partial files.

Standard library HTTP only. Each file streams into `<file>.part` and is renamed
atomically once complete, so a file under its final name is always whole. A
leftover `.part` is resumed with `Range: bytes=N-` (206 appends; a server that
answers 200 instead restarts it from zero). Connection errors, timeouts and
5xx answers are retried with exponential backoff; other HTTP errors fail at
once with a message naming the status and the URL.

The URL layout of each release lives in `RELEASES` below: correct it there.
"""

from __future__ import annotations

import http.client
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DownloadError", "DumpFiles", "RELEASES", "dump_urls", "download_file", "download_dump"]

# release -> default base URL and path templates ({category} is substituted; None = not offered).
RELEASES: dict[str, dict[str, str | None]] = {
    "2023": {
        "base": "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023",
        "reviews": "raw/review_categories/{category}.jsonl.gz",
        "reviews_5core": None,
        "meta": "raw/meta_categories/meta_{category}.jsonl.gz",
    },
    "2018": {
        "base": "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2",
        "reviews": "categoryFiles/{category}.json.gz",
        "reviews_5core": "categoryFilesSmall/{category}_5.json.gz",
        "meta": "metaFiles2/meta_{category}.json.gz",
    },
}

USER_AGENT = "recsaver/0.1 (+python urllib)"
_RETRY_STATUS = {408, 425, 429}  # plus every 5xx
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_CONTENT_RANGE_UNSAT = re.compile(r"bytes\s+\*/(\d+)")


class DownloadError(OSError):
    """A download that failed for good; the message names the URL (and HTTP status).

    A subclass of OSError (so of Exception) so that callers treating I/O failures
    alike, such as the CLI's error handler, report it as one clear line.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class DumpFiles:
    reviews: Path
    meta: Path | None


class _Transient(Exception):
    """A failure worth retrying (network trouble, 5xx); `message` is user-facing."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class _Restart(Exception):
    """The partial file cannot be resumed: discard it and start again at once."""


# --------------------------------------------------------------------------- URLs


def _check_category(category: str) -> str:
    cat = str(category).strip()
    if not cat or cat.startswith(".") or any(c in cat for c in "/\\?#") or any(ord(c) < 32 for c in cat):
        raise ValueError(f"invalid category {category!r}: expected a name such as All_Beauty or Movies_and_TV")
    return cat


def dump_urls(release: str, category: str, *, base_url: str | None = None, five_core: bool = False,
              meta: bool = True) -> list[tuple[str, str]]:
    """The (url, filename) pairs to fetch: the reviews file first, then the meta file if asked."""
    rel = str(release).strip()
    if rel not in RELEASES:
        raise ValueError(f"unknown release {release!r}: expected one of {', '.join(sorted(RELEASES))}")
    layout = RELEASES[rel]
    cat = _check_category(category)
    if five_core:
        template = layout["reviews_5core"]
        if template is None:
            offered = [r for r, lay in RELEASES.items() if lay["reviews_5core"]]
            raise ValueError(f"release {rel} has no per-category 5-core file; --five-core is for release "
                             f"{' or '.join(offered)}")
    else:
        template = layout["reviews"]
    templates = [template]
    if meta and layout["meta"]:
        templates.append(layout["meta"])
    base = (base_url or layout["base"] or "").rstrip("/")
    out = []
    for t in templates:
        assert t is not None
        rel_path = t.format(category=cat)
        url = f"{base}/{t.format(category=urllib.parse.quote(cat, safe=''))}"
        out.append((url, rel_path.rsplit("/", 1)[-1]))
    return out


# --------------------------------------------------------------------------- HTTP


def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> urllib.request.Request:
    h = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    h.update(headers or {})
    return urllib.request.Request(url, method=method, headers=h)


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _remote_size(url: str, timeout: float) -> int | None:
    """Content-Length from a HEAD request, or None when it cannot be had (best effort, one try)."""
    try:
        with urllib.request.urlopen(_request(url, "HEAD"), timeout=timeout) as resp:
            return _int_header(resp.headers.get("Content-Length"))
    except (OSError, http.client.HTTPException, ValueError):
        return None


def _http_error(err: urllib.error.HTTPError, url: str) -> Exception:
    reason = http.client.responses.get(err.code) or err.reason or ""  # standard phrase, e.g. "Not Found"
    msg = f"HTTP {err.code} {reason}".strip() + f": {url}"
    if err.code >= 500 or err.code in _RETRY_STATUS:
        return _Transient(msg)
    if err.code in (404, 410):
        msg += " (check --category spelling and --release)"
    elif err.code in (401, 403):
        msg += " (access denied; try --base-url with a mirror)"
    return DownloadError(msg)


def _progress_bar() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True))


def _fetch_once(url: str, part: Path, timeout: float, chunk_size: int,
                report: Callable[[int, int | None], None]) -> None:
    """One GET into `part`, resuming it if present. Returns when `part` holds the whole file.

    Raises _Transient (retry), _Restart (part discarded, retry at once) or DownloadError.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = urllib.request.urlopen(_request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            m = _CONTENT_RANGE_UNSAT.match(e.headers.get("Content-Range", "") if e.headers else "")
            e.close()
            if m and int(m.group(1)) == offset:
                report(offset, offset)
                return  # the partial file was already complete
            part.unlink(missing_ok=True)
            raise _Restart from None
        err = _http_error(e, url)
        e.close()
        raise err from None
    except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, resets
        reason = getattr(e, "reason", None) or e
        raise _Transient(f"cannot fetch {url}: {reason}") from None

    with resp:
        status = getattr(resp, "status", None) or 200
        length = _int_header(resp.headers.get("Content-Length"))
        if status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not offset or not m or int(m.group(1)) != offset:
                part.unlink(missing_ok=True)  # not the range we asked for: do not splice it in
                raise _Restart
            total = int(m.group(3)) if m.group(3) != "*" else (offset + length if length is not None else None)
            mode = "ab"
        elif status == 200:
            offset, total, mode = 0, length, "wb"  # no range support (or fresh start): from zero
        else:
            raise DownloadError(f"HTTP {status} {getattr(resp, 'reason', '')}: unexpected answer from {url}")

        done = offset
        report(done, total)
        with open(part, mode) as f:
            while True:
                try:
                    chunk = resp.read(chunk_size)
                except (OSError, http.client.HTTPException) as e:
                    raise _Transient(f"connection lost while reading {url} after {done} bytes: "
                                     f"{type(e).__name__}: {e}") from None
                if not chunk:
                    break
                f.write(chunk)
                done += len(chunk)
                report(done, total)

    if total is not None and done != total:
        if done > total:
            part.unlink(missing_ok=True)
            raise _Transient(f"received {done} bytes but {url} has {total}; starting again")
        raise _Transient(f"connection closed early on {url}: {done} of {total} bytes")


def download_file(url: str, dest: Path, *, progress: bool = True, retries: int = 3, timeout: float = 60.0,
                  chunk_size: int = 1 << 20, backoff: float = 1.0) -> Path:
    """Fetch `url` into `dest` (via `dest.part`, resumed if present); return `dest`.

    A `dest` that already exists is kept when its size matches the server's
    Content-Length (HEAD), or when the server gives none. Connection errors,
    timeouts and 5xx answers are retried up to `retries` times in a row, waiting
    `backoff * 2**k` seconds before retry k+1; an attempt that gets further
    into the file than any before renews the budget.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if dest.is_file():
        expected = _remote_size(url, timeout)
        if expected is None or dest.stat().st_size == expected:
            return dest
    dest.parent.mkdir(parents=True, exist_ok=True)

    bar = _progress_bar() if progress else None
    task = None

    def report(done: int, total: int | None) -> None:
        nonlocal task
        if bar is None:
            return
        if task is None:
            task = bar.add_task(dest.name, total=total, completed=done)
        else:
            bar.update(task, total=total, completed=done)

    failures = 0
    restarts = 0
    best = part.stat().st_size if part.exists() else 0
    if bar is not None:
        bar.start()
    try:
        while True:
            try:
                _fetch_once(url, part, timeout, chunk_size, report)
                break
            except _Restart:
                restarts += 1
                if restarts > 2:
                    raise DownloadError(f"{url}: the server keeps answering ranges that do not match "
                                        f"the partial file {part}") from None
            except _Transient as e:
                size = part.stat().st_size if part.exists() else 0
                if size > best:  # the attempt got further than any before: a fresh retry budget
                    best, failures = size, 0
                failures += 1
                if failures > retries:
                    raise DownloadError(f"{e.message} (gave up after {failures} attempts)") from None
                time.sleep(backoff * 2 ** (failures - 1))
    finally:
        if bar is not None:
            bar.stop()
    os.replace(part, dest)
    return dest


def download_dump(release: str, category: str, out_dir: Path, *, base_url: str | None = None,
                  five_core: bool = False, meta: bool = True, progress: bool = True, retries: int = 3,
                  timeout: float = 60.0, backoff: float = 1.0) -> DumpFiles:
    """Fetch a category's review file (and meta file) of a release into `out_dir`."""
    urls = dump_urls(release, category, base_url=base_url, five_core=five_core, meta=meta)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [download_file(url, out_dir / name, progress=progress, retries=retries, timeout=timeout,
                           backoff=backoff)
             for url, name in urls]
    return DumpFiles(reviews=paths[0], meta=paths[1] if len(paths) > 1 else None)
