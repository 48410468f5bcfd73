"""The files of `--batch`: batch JSONL lines, result lines, and the durable record of a submitted batch.

A batch input line is the OpenAI Batch API's: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions",
"body"}`` with `custom_id` the request's cache key and `body` exactly what `OpenAIBackend` would POST for
that request, so a result read from a batch is the result of the very call the cache key names. vLLM's
offline ``python -m vllm.entrypoints.openai.run_batch -i FILE -o OUT --model M`` reads the same lines and
writes result lines of the same shape (``{"custom_id", "response": {"status_code", "body"}, "error"}``).

The record of a submitted batch is what makes an interrupted run resume it instead of paying for it
twice. Why JSON files next to the generation cache (``<cache>.batches/``), not a table in the cache:
the backend does not own the cache (`CachedBackend` wraps it, and backends/ import nothing of
cache.py), the record must exist before a single result does, and a person must be able to read it
(the batch id, to look it up or cancel it in the provider's dashboard). One file per batch, written
to a temporary name, fsynced and renamed, so a kill -9 at any moment leaves the old state or the
new one, never half a record. The batch's input JSONL sits beside its record until the batch's
results are collected; both are deleted then.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__package__)

BATCH_WINDOW = "24h"  # the only completion window the OpenAI Batch API offers
# A line that failed with one of these statuses is sent again in a follow-up batch (as retries.py
# retries them); any other 4xx would fail the same way again.
RETRYABLE_LINE_STATUS = frozenset({408, 429})


def batch_line(custom_id: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """One input line: `path` is the backend's (``/chat/completions``), the line's url the API's (``/v1/...``)."""
    return {"custom_id": custom_id, "method": "POST", "url": "/v1" + path, "body": body}


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_batch_file(lines: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write batch input lines as JSONL (atomically): the file `--batch` uploads, or vLLM's `run-batch` reads."""
    path = Path(path)
    _atomic_write(path, b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def read_result_lines(data: bytes, source: str) -> dict[str, dict[str, Any]]:
    """custom_id -> result line of an output or error file; unreadable lines are logged and skipped (their
    requests then count as missing, and are retried or reported, never dropped)."""
    found: dict[str, dict[str, Any]] = {}
    for n, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            log.warning("%s:%d: not JSON, skipped: %s", source, n, e)
            continue
        if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
            found[line["custom_id"]] = line
        else:
            log.warning("%s:%d: no custom_id, skipped", source, n)
    return found


@dataclass(frozen=True)
class LineOutcome:
    """One result line read: the response body, or why there is none and whether a follow-up may help."""

    body: dict[str, Any] | None
    error: str | None = None
    retryable: bool = True


def line_outcome(line: dict[str, Any]) -> LineOutcome:
    """The completion of a result line, or its error. Expired, cancelled, rate-limited and server-failed
    lines are retryable; a line the server refused (another 4xx) or answered without choices is not."""
    response = line.get("response") if isinstance(line.get("response"), dict) else None
    status = response.get("status_code") if response else None
    body = response.get("body") if response else None
    error = line.get("error")
    if status == 200 and isinstance(body, dict) and not error:
        choices = body.get("choices")
        if choices and isinstance(choices[0], dict):
            return LineOutcome(body)
        return LineOutcome(None, f"response without choices: {orjson.dumps(body)[:300].decode()}", retryable=False)
    if isinstance(error, dict):
        message = f"{error.get('code') or 'error'}: {error.get('message') or ''}".strip()
    elif error:
        message = str(error)
    else:
        detail = body.get("error") if isinstance(body, dict) else body
        message = f"HTTP {status}: {orjson.dumps(detail)[:300].decode()}"
    retryable = status is None or not isinstance(status, int) or status in RETRYABLE_LINE_STATUS or status >= 500
    return LineOutcome(None, message, retryable=retryable)


@dataclass(frozen=True)
class BatchRecord:
    """A submitted batch: enough to find it again (`batch_id` on `base_url`) and to know whose results it holds."""

    batch_id: str
    model_id: str
    base_url: str
    endpoint: str  # the backend's path: /chat/completions or /completions
    keys: tuple[str, ...]  # the custom_ids (cache keys) it answers
    round: int  # 0: first batch of these requests; k: the k-th follow-up
    input_file_id: str
    created_at: float

    @staticmethod
    def digest(endpoint: str, round: int, keys: Iterable[str]) -> str:
        text = "\n".join([endpoint, str(round), *sorted(keys)])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    @property
    def name(self) -> str:
        return self.digest(self.endpoint, self.round, self.keys)


class BatchRecords:
    """The folder of batch records (see the module docstring)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def input_path(self, name: str) -> Path:
        return self.folder / f"{name}.jsonl"

    def save(self, record: BatchRecord) -> Path:
        """Write the record durably (before the batch is polled, so a kill while polling resumes it)."""
        path = self.folder / f"{record.name}.json"
        _atomic_write(path, orjson.dumps({**asdict(record), "keys": list(record.keys)}, option=orjson.OPT_INDENT_2))
        return path

    def matching(self, model_id: str, base_url: str, keys: Iterable[str]) -> list[BatchRecord]:
        """The records of this model and server holding any of `keys`: batches to resume, oldest first."""
        wanted = set(keys)
        found = []
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                d = orjson.loads(path.read_bytes())
                record = BatchRecord(**{**d, "keys": tuple(d["keys"])})
            except (OSError, orjson.JSONDecodeError, TypeError, KeyError) as e:
                log.warning("%s: unreadable batch record, ignored: %s", path, e)
                continue
            if record.model_id == model_id and record.base_url == base_url and wanted.intersection(record.keys):
                found.append(record)
        return sorted(found, key=lambda r: r.created_at)

    def delete(self, record: BatchRecord) -> None:
        """Forget a batch whose results have all been taken (its input file too)."""
        for path in (self.folder / f"{record.name}.json", self.input_path(record.name)):
            path.unlink(missing_ok=True)

