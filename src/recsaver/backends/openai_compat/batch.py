"""`--batch`: `OpenAIBackend.generate` through the OpenAI Batch API instead of one call per request.

Why: a batch costs half as much on hosted APIs, and a long rating run rarely needs its answers within
seconds. One `generate` call under `batch=True`:

1. Each request's body is built exactly as for a normal call (`_body`); requests with one cache key are
   sent once. A request whose body cannot be built fails at once, as a normal call does.
2. Resume: batch records (batch_files.py; JSON files in ``<cache>.batches/``) of this model and server
   that hold any of the requests' cache keys are batches an interrupted run submitted: they are polled
   again by id, never submitted again. A batch the server no longer knows (404) is submitted afresh.
3. The other requests are written as a batch JSONL per endpoint (``custom_id`` = the cache key),
   uploaded (``POST /v1/files``, purpose ``batch``) and made a batch (``POST /v1/batches``, completion
   window 24h). Its record is saved before the first poll (a kill in the one round trip between the
   batch's creation and that write leaves a batch no record names; the rerun submits again).
4. ``GET /v1/batches/{id}`` is polled until the batch is completed, expired, failed or cancelled, first
   after `batch_poll_s` seconds, then doubling up to `batch_poll_max_s` (environment
   ``RECSAVER_BATCH_POLL_S`` / ``RECSAVER_BATCH_POLL_MAX_S``; tests set them small).
5. The output and error files are downloaded (``GET /v1/files/{id}/content``). Each line becomes a
   `Generation` parsed as a normal response is and is handed to `on_result` as it is read, so
   `CachedBackend` stores it at once.
6. Lines in the error file, or missing from the output (a batch that ended expired, failed or
   cancelled with partial output), go into a follow-up batch, at most `batch_followups` (2) times. A
   line still failing then, or one the server refused (a 4xx other than 408/429), is a `Generation`
   whose error names the batch, its status and the line's error. Nothing is dropped silently.

A batch has no per-request time: each Generation's `latency_s` is its share of the batch's wall time
(submission or resumption to collection), so the ledger's model seconds add up to the time waited.
With several base URLs the batch goes to the first. Probes (`probe`) keep using normal calls under
`--batch`: each is one token, asked only after the answers are known, so batching them would add a
day-long round trip per step for little saving.

Offline (vLLM ``run-batch``, no server): with ``RECSAVER_BATCH_FILE=PATH`` the JSONL of the requests
not in the cache is written to PATH and nothing is submitted (each request is an error saying so, so
the run reports itself incomplete). With ``RECSAVER_BATCH_RESULTS=PATH`` the result file that
``run-batch`` wrote is read instead of submitting, and its lines land in the cache like a batch's.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from ..base import Generation, GenerationRequest, OnResult
from .batch_files import (
    BATCH_WINDOW,
    BatchRecord,
    BatchRecords,
    LineOutcome,
    batch_line,
    line_outcome,
    read_result_lines,
)
from .batch_files import write_batch_file as write_jsonl
from .bodies import RequestBodies
from .retries import RETRYABLE_STATUS, Retries, _snippet, parse_retry_after

log = logging.getLogger(__package__)

TERMINAL = frozenset({"completed", "expired", "failed", "cancelled"})
WRITE_ONLY_ENV = "RECSAVER_BATCH_FILE"
RESULTS_ENV = "RECSAVER_BATCH_RESULTS"
Deliver = Callable[[int, Generation], None]


def default_batch_dir() -> Path:
    """Beside the default generation cache (steps/engine.py passes the one beside `--cache`)."""
    home = Path(os.environ.get("RECSAVER_HOME", Path.home() / ".cache" / "recsaver"))
    return home / "generations.sqlite.batches"


class BatchAPIError(Exception):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class _Item:
    """One distinct request (cache key) of a `generate` call: where its results go, its batches so far."""

    request: GenerationRequest
    path: str
    body: dict[str, Any]
    indices: list[int]
    round: int = 0


@dataclass
class _Job:
    """A batch being waited for."""

    record: BatchRecord
    started: float  # time.monotonic() at submission or resumption
    batch: dict[str, Any] = field(default_factory=dict)  # the last batch object polled
    lost: str | None = None  # polling or download failed: the record is kept, a rerun resumes it
    gone: bool = False  # the server does not know the batch: submit its requests afresh


class BatchRuns(RequestBodies, Retries):
    """`OpenAIBackend` methods that run `generate` as batches (see the module docstring)."""

    batch: bool
    batch_dir: Path
    batch_poll_s: float
    batch_poll_max_s: float
    batch_followups: int

    def _generation(self, request: GenerationRequest, path: str, data: dict[str, Any], latency: float) -> Generation:
        raise NotImplementedError  # OpenAIBackend's: one response parsed, the same for calls and batches

    # ---- the Batch API, with retries -----------------------------------------------------------
    def _api(self, method: str, url: str, content: bytes | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        last = ""
        for retry in range(self.max_retries + 1):
            retry_after = None
            try:
                resp = self._client.request(method, url, content=content, headers=headers)
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if resp.status_code < 400:
                    return resp
                last = f"HTTP {resp.status_code}: {_snippet(resp.text)}"
                if resp.status_code not in RETRYABLE_STATUS and resp.status_code < 500:
                    raise BatchAPIError(f"{method} {url}: {last} (not retried)", resp.status_code)
                if resp.status_code in (429, 503):
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if retry < self.max_retries:
                time.sleep(self._delay(retry, retry_after))
        raise BatchAPIError(f"{method} {url}: failed after {self.max_retries + 1} attempts; last error: {last}")

    def _api_json(self, method: str, url: str, content: bytes | None = None,
                  headers: dict[str, str] | None = None) -> dict[str, Any]:
        resp = self._api(method, url, content, headers)
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError as e:
            raise BatchAPIError(f"{method} {url}: invalid JSON: {e}") from e
        if not isinstance(data, dict) or not data.get("id"):
            raise BatchAPIError(f"{method} {url}: no id in the answer: {_snippet(resp.text)}")
        return data

    def _upload(self, base: str, name: str, data: bytes) -> str:
        """POST /v1/files, multipart (built here: the client's JSON Content-Type must not win)."""
        boundary = uuid.uuid4().hex
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: application/jsonl\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return str(self._api_json("POST", f"{base}/files", body, headers)["id"])

    def _submit(self, records: BatchRecords, base: str, endpoint: str, keys: list[str],
                items: dict[str, _Item]) -> _Job:
        rnd = max(items[k].round for k in keys)
        name = BatchRecord.digest(endpoint, rnd, keys)
        path = write_jsonl((batch_line(k, endpoint, items[k].body) for k in keys), records.input_path(name))
        file_id = self._upload(base, path.name, path.read_bytes())
        batch = self._api_json("POST", f"{base}/batches", orjson.dumps({
            "input_file_id": file_id, "endpoint": "/v1" + endpoint, "completion_window": BATCH_WINDOW,
            "metadata": {"recsaver": name}}))
        record = BatchRecord(batch_id=str(batch["id"]), model_id=self.model_id, base_url=base, endpoint=endpoint,
                             keys=tuple(keys), round=rnd, input_file_id=file_id, created_at=time.time())
        records.save(record)
        log.info("submitted batch %s: %d requests (round %d)", record.batch_id, len(keys), rnd)
        return _Job(record, time.monotonic(), batch)

    def _poll(self, jobs: list[_Job]) -> None:
        """Until every job is terminal (or lost): all polled each time, then a wait that doubles, capped."""
        delay = self.batch_poll_s
        active = list(jobs)
        while True:
            still = []
            for job in active:
                url = f"{job.record.base_url}/batches/{job.record.batch_id}"
                try:
                    job.batch = self._api_json("GET", url)
                except BatchAPIError as e:
                    job.gone, job.lost = (True, None) if e.status == 404 else (False, str(e))
                    continue
                if job.batch.get("status") not in TERMINAL:
                    still.append(job)
            active = still
            if not active:
                return
            time.sleep(delay)
            delay = min(delay * 2, self.batch_poll_max_s)

    def _download(self, job: _Job) -> dict[str, dict[str, Any]]:
        """The result lines of a finished batch by custom_id (output lines win over error lines)."""
        lines: dict[str, dict[str, Any]] = {}
        for kind in ("error_file_id", "output_file_id"):
            file_id = job.batch.get(kind)
            if file_id:
                resp = self._api("GET", f"{job.record.base_url}/files/{file_id}/content", headers={"Accept": "*/*"})
                lines.update(read_result_lines(resp.content, f"batch {job.record.batch_id} {kind} {file_id}"))
        return lines

    # ---- turning lines into Generations ------------------------------------------------------------
    def _settle(self, items: dict[str, _Item], key: str, outcome: LineOutcome, latency: float, where: str,
                deliver: Deliver) -> None:
        """Deliver a line's Generation, or keep its request for a follow-up batch, or deliver why it failed."""
        item = items[key]
        if outcome.body is not None:
            try:
                generation = self._generation(item.request, item.path, outcome.body, latency)
            except (KeyError, IndexError, TypeError, ValueError) as e:
                generation = Generation(text=None, error=f"{where}: unreadable response: {type(e).__name__}: {e}")
        elif outcome.retryable and item.round < self.batch_followups:
            item.round += 1
            return
        else:
            tries = f"after {item.round + 1} batches" if outcome.retryable else "not retried"
            generation = Generation(text=None, error=f"{where}: {outcome.error} ({tries})", latency_s=latency)
        del items[key]
        for i in item.indices:
            deliver(i, generation)

    def _collect(self, job: _Job, items: dict[str, _Item], records: BatchRecords, deliver: Deliver) -> None:
        rec = job.record
        keys = [k for k in rec.keys if k in items]
        if job.gone:  # its requests go into a follow-up batch (counted, so a server that forgets every batch ends)
            log.warning("batch %s is unknown to %s: its %d requests are submitted again", rec.batch_id,
                        rec.base_url, len(keys))
            forgotten = LineOutcome(None, f"{rec.base_url} no longer knows the batch (HTTP 404)")
            for k in keys:
                self._settle(items, k, forgotten, 0.0, f"batch {rec.batch_id}", deliver)
            records.delete(rec)
            return
        if job.lost is None:
            try:
                lines = self._download(job)
            except BatchAPIError as e:
                job.lost = str(e)
        if job.lost is not None:
            why = LineOutcome(None, f"{job.lost}; the batch record stays in {records.folder}, a rerun resumes it",
                              retryable=False)
            for k in keys:
                self._settle(items, k, why, 0.0, f"batch {rec.batch_id}", deliver)
            return
        status = str(job.batch.get("status"))
        where = f"batch {rec.batch_id} ({status})"
        errors = job.batch.get("errors")
        errors = (errors.get("data") or []) if isinstance(errors, dict) else []
        said = "; ".join(str(e.get("message") or e.get("code")) for e in errors[:3] if isinstance(e, dict))
        missing = LineOutcome(None, f"no result line for this request{': ' + said if said else ''}")
        share = (time.monotonic() - job.started) / max(1, len(rec.keys))
        for k in keys:
            self._settle(items, k, line_outcome(lines[k]) if k in lines else missing, share, where, deliver)
        records.delete(rec)  # every line taken: delivered, or waiting for its follow-up in `items`

    # ---- generate --------------------------------------------------------------------------------
    def write_batch_file(self, requests: Sequence[GenerationRequest], path: str | Path) -> Path:
        """The batch JSONL of `requests` as `--batch` would upload it (one line per cache key), for vLLM's
        ``run-batch`` or a manual upload; nothing is sent. A request whose body cannot be built raises
        ValueError."""
        lines: dict[str, dict[str, Any]] = {}
        for request in requests:
            key = request.key(self.model_id)
            if key not in lines:
                endpoint, body = self._body(request)
                lines[key] = batch_line(key, endpoint, body)
        return write_jsonl(lines.values(), path)

    def _batch_generate(self, requests: Sequence[GenerationRequest], on_result: OnResult | None) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)

        def deliver(i: int, generation: Generation) -> None:
            results[i] = generation
            if on_result is not None:
                on_result(i, generation)

        items: dict[str, _Item] = {}
        for i, request in enumerate(requests):
            key = request.key(self.model_id)
            if key in items:
                items[key].indices.append(i)
                continue
            try:
                path, body = self._body(request)
            except ValueError as e:
                deliver(i, Generation(text=None, error=f"not sent: {e}"))
                continue
            items[key] = _Item(request, path, body, [i])
        if items and (os.environ.get(WRITE_ONLY_ENV) or os.environ.get(RESULTS_ENV)):
            self._offline(items, deliver)
        elif items:
            self._rounds(items, deliver)
        return [g if g is not None else Generation(text=None, error="batch: no result") for g in results]

    def _rounds(self, items: dict[str, _Item], deliver: Deliver) -> None:
        base = self._servers[0].url
        records = BatchRecords(self.batch_dir)
        jobs: list[_Job] = []
        for rec in records.matching(self.model_id, base, items):
            for k in rec.keys:
                if k in items:
                    items[k].round = rec.round
            jobs.append(_Job(rec, time.monotonic()))
            log.info("resuming batch %s (%d requests) from %s", rec.batch_id, len(rec.keys), records.folder)
        while items:
            waiting = {k for job in jobs for k in job.record.keys}
            fresh = [k for k in items if k not in waiting]
            for endpoint in dict.fromkeys(items[k].path for k in fresh):
                keys = [k for k in fresh if items[k].path == endpoint]
                try:
                    jobs.append(self._submit(records, base, endpoint, keys, items))
                except BatchAPIError as e:
                    refused = LineOutcome(None, str(e), retryable=False)
                    for k in keys:
                        self._settle(items, k, refused, 0.0, "batch not submitted", deliver)
            if not jobs:
                return
            self._poll(jobs)
            for job in jobs:
                self._collect(job, items, records, deliver)
            jobs = []

    def _offline(self, items: dict[str, _Item], deliver: Deliver) -> None:
        """RECSAVER_BATCH_FILE: write the JSONL and submit nothing; RECSAVER_BATCH_RESULTS: read run-batch's output."""
        results = os.environ.get(RESULTS_ENV)
        if results:
            lines = read_result_lines(Path(results).read_bytes(), results)
            absent = LineOutcome(None, f"no line for this request in {results}", retryable=False)
            for k in list(items):
                self._settle(items, k, line_outcome(lines[k]) if k in lines else absent, 0.0, results, deliver)
            return
        target = os.environ[WRITE_ONLY_ENV]
        write_jsonl((batch_line(k, it.path, it.body) for k, it in items.items()), target)
        log.warning("wrote %d batch requests to %s and submitted nothing (%s)", len(items), target, WRITE_ONLY_ENV)
        unsent = LineOutcome(None, f"written to {target} and not submitted ({WRITE_ONLY_ENV} is set)",
                             retryable=False)
        for k in list(items):
            self._settle(items, k, unsent, 0.0, "batch", deliver)
