"""Durable SQLite store of every model call: the resume mechanism.

Every successful generation is committed the moment it finishes (WAL mode), so
a run killed with `kill -9` loses at most the calls that were in flight. The
key is `GenerationRequest.key(model_id)`: model identity (with its file hash),
messages, sampling parameters, grammar and sample index, so a cached sample is
never served as a different sample. Failed calls are logged in their own table
for audit and retried on the next run; they never shadow a success.

Several processes may share one cache (two runs on one machine, or a fleet on a shared disk). Before
generating, a process claims each missing key in the `claims` table; a key another live process has
claimed is waited for, not computed twice, and taken over once its claim is stale: the owner's
heartbeat stopped (`STALE_AFTER_S`), or the owner is a process on this host that no longer exists.

Probes (`Backend.probe`) are stored in the same file, in their own `probes` table keyed by
`ProbeRequest.key(model_id)`, each committed as it finishes; a failed probe is not stored (it is
asked again next time). Probes take no claims: one costs about one forward pass, so two processes
asking for the same probe at once both compute it and the first write wins.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .backends.base import Backend, Generation, GenerationRequest, OnProbe, OnResult, Probe, ProbeRequest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
  key TEXT PRIMARY KEY,
  model_id TEXT NOT NULL,
  request BLOB NOT NULL,
  generation BLOB NOT NULL,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
  key TEXT NOT NULL,
  model_id TEXT NOT NULL,
  error TEXT NOT NULL,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS probes (
  key TEXT PRIMARY KEY,
  model_id TEXT NOT NULL,
  request BLOB NOT NULL,
  result BLOB NOT NULL,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
  key TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  heartbeat REAL NOT NULL
);
"""

HEARTBEAT_S = 5.0  # how often a process refreshes the claims it holds
STALE_AFTER_S = 60.0  # a claim whose heartbeat is older than this is taken over (owner on another host, hung)
POLL_S = 0.5  # how often a waiting process looks for the results another process is computing


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a killed process its parent has not reaped yet (a zombie) computes nothing either
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _request_blob(request: GenerationRequest) -> bytes:
    return orjson.dumps({
        "messages": request.messages, "prompt_text": request.prompt_text, "params": request.params.to_dict(),
        "sample_index": request.sample_index, "grammar": request.grammar, "rating_probs": request.rating_probs,
        "tag": request.tag,
    })


def _probe_blob(request: ProbeRequest) -> bytes:
    return orjson.dumps({
        "messages": request.messages, "prompt_text": request.prompt_text, "continuation": request.continuation,
        "candidates": request.candidates, "tag": request.tag,
    })


class GenerationCache:
    """Thread-safe: backends may report results from worker threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=60)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.executescript(_SCHEMA)
        self.owner, self.host, self.pid = uuid.uuid4().hex, socket.gethostname(), os.getpid()
        self._held: set[str] = set()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # ---- claims: one process computes a key, the others wait for it ----------------------------
    def claim(self, keys: Sequence[str]) -> tuple[list[str], list[str]]:
        """Claim the keys nobody live holds: (claimed by us now, held by another live process)."""
        now = time.time()
        mine, theirs = [], []
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                for key in keys:
                    row = self._con.execute("SELECT owner, host, pid, heartbeat FROM claims WHERE key = ?",
                                            (key,)).fetchone()
                    if row is not None and row[0] != self.owner and not self._stale(row, now):
                        theirs.append(key)
                        continue
                    self._con.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?)",
                                      (key, self.owner, self.host, self.pid, now))
                    mine.append(key)
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._held.update(mine)
        if mine:
            self._start_heartbeat()
        return mine, theirs

    def _stale(self, row: tuple[str, str, int, float], now: float) -> bool:
        _, host, pid, heartbeat = row
        return now - heartbeat > STALE_AFTER_S or (host == self.host and not _alive(pid))

    def release(self, keys: Sequence[str]) -> None:
        with self._lock:
            self._release_locked(keys)

    def _release_locked(self, keys: Sequence[str]) -> None:
        keys = [k for k in keys if k in self._held]
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            self._con.execute(f"DELETE FROM claims WHERE owner = ? AND key IN ({','.join('?' * len(chunk))})",
                              [self.owner, *chunk])
        self._held.difference_update(keys)

    def _start_heartbeat(self) -> None:
        if self._beat is None or not self._beat.is_alive():
            self._beat = threading.Thread(target=self._heartbeat, name="recsaver-cache-heartbeat", daemon=True)
            self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):  # until close(); a beat with nothing held updates no row
            with self._lock:
                if not self._held:
                    continue
                try:
                    self._con.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), self.owner))
                except sqlite3.Error:  # busy or closed: the next beat tries again; staleness allows for it
                    continue

    def _blobs(self, table: str, column: str, keys: Sequence[str]) -> dict[str, Any]:
        """key -> the decoded JSON in `column` of `table`, for the keys that are there (500 a query)."""
        found: dict[str, Any] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start:start + 500])
                marks = ",".join("?" * len(chunk))
                for key, blob in self._con.execute(f"SELECT key, {column} FROM {table} WHERE key IN ({marks})", chunk):
                    found[key] = orjson.loads(blob)
        return found

    def get_many(self, keys: Sequence[str]) -> dict[str, Generation]:
        rows = self._blobs("generations", "generation", keys)
        return {k: Generation.from_dict(d, cached=True) for k, d in rows.items()}

    def put(self, key: str, model_id: str, request: GenerationRequest, generation: Generation) -> None:
        with self._lock:
            if generation.ok:
                self._con.execute(
                    "INSERT OR IGNORE INTO generations VALUES (?, ?, ?, ?, ?)",
                    (key, model_id, _request_blob(request), orjson.dumps(generation.to_dict()), time.time()),
                )
            else:
                self._con.execute(
                    "INSERT INTO failures VALUES (?, ?, ?, ?)",
                    (key, model_id, generation.error or "no text", time.time()),
                )
            self._release_locked([key])

    def count(self) -> int:
        with self._lock:
            return int(self._con.execute("SELECT count(*) FROM generations").fetchone()[0])

    # ---- probes: their own table, no claims ----------------------------------------------
    def get_probes(self, keys: Sequence[str]) -> dict[str, Probe]:
        return {k: Probe.from_dict(d, cached=True) for k, d in self._blobs("probes", "result", keys).items()}

    def put_probe(self, key: str, model_id: str, request: ProbeRequest, probe: Probe) -> None:
        """Store a successful probe (committed at once); a failed one is not stored."""
        if not probe.ok:
            return
        with self._lock:
            self._con.execute("INSERT OR IGNORE INTO probes VALUES (?, ?, ?, ?, ?)",
                              (key, model_id, _probe_blob(request), orjson.dumps(probe.to_dict()), time.time()))

    def count_probes(self) -> int:
        with self._lock:
            return int(self._con.execute("SELECT count(*) FROM probes").fetchone()[0])

    def failures(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._con.execute("SELECT key, error FROM failures ORDER BY created_at"))

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._release_locked(list(self._held))
            self._con.close()


def count_generations(path: Path) -> int:
    """Generations stored in a cache file, read from outside the run that writes it (kill/resume checks).

    Unlike GenerationCache it creates nothing: 0 when the file or its table does not exist yet.
    """
    if not Path(path).exists():
        return 0
    with closing(sqlite3.connect(path)) as con:
        try:
            return con.execute("SELECT count(*) FROM generations").fetchone()[0]
        except sqlite3.OperationalError:  # killed before the schema was written
            return 0


@dataclass
class CacheStats:
    hits: int = 0  # served from the cache, including results another process computed while we waited
    misses: int = 0  # generated by this process
    waited: int = 0  # of the hits: keys another live process was computing when we asked


class CachedBackend:
    """Wraps a backend: cached requests are answered from SQLite, the rest generated and stored at once.

    Missing keys are claimed first (see the module docstring), so two processes asking for the same
    generations compute each one once: the second waits for what the first holds.
    """

    def __init__(self, backend: Backend, cache: GenerationCache, poll_s: float = POLL_S):
        self.backend, self.cache, self.poll_s = backend, cache, poll_s
        self.model_id = backend.model_id
        self.context_length = backend.context_length
        self.stats = CacheStats()

    def generate(self, requests: Sequence[GenerationRequest], on_result: OnResult | None = None) -> list[Generation]:
        keys = [r.key(self.model_id) for r in requests]
        results: list[Generation | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        waited: set[int] = set()
        while pending:
            found = self.cache.get_many([keys[i] for i in pending])
            for i in pending:
                if keys[i] in found:
                    results[i] = hit = found[keys[i]]
                    self.stats.hits += 1
                    self.stats.waited += int(i in waited)
                    if on_result:
                        on_result(i, hit)
            pending = [i for i in pending if results[i] is None]
            if not pending:
                break
            mine, _ = self.cache.claim(list(dict.fromkeys(keys[i] for i in pending)))
            claimed = set(mine)
            todo = [i for i in pending if keys[i] in claimed]
            if todo:
                self._generate(requests, keys, todo, results, on_result)
            pending = [i for i in pending if results[i] is None]
            waited.update(pending)
            if pending and not todo:
                time.sleep(self.poll_s)
        return [g if g is not None else Generation(text=None, error="backend returned no result") for g in results]

    def _generate(self, requests: Sequence[GenerationRequest], keys: list[str], todo: list[int],
                  results: list[Generation | None], on_result: OnResult | None) -> None:
        self.stats.misses += len(todo)

        def store(j: int, generation: Generation) -> None:
            i = todo[j]
            self.cache.put(keys[i], self.model_id, requests[i], generation)
            results[i] = generation
            if on_result:
                on_result(i, generation)

        try:
            generated = self.backend.generate([requests[i] for i in todo], on_result=store)
        finally:
            self.cache.release([keys[i] for i in todo])  # anything the backend did not finish
        for j, generation in enumerate(generated):
            i = todo[j]
            if results[i] is None:  # a backend that did not call on_result for this one
                self.cache.put(keys[i], self.model_id, requests[i], generation)
                results[i] = generation
                if on_result:
                    on_result(i, generation)

    def probe(self, requests: Sequence[ProbeRequest], on_result: OnProbe | None = None) -> list[Probe]:
        """Cached probes from SQLite, the rest from the backend, each stored as it finishes (no claims:
        see the module docstring). Counted in `stats` like generations."""
        keys = [r.key(self.model_id) for r in requests]
        found = self.cache.get_probes(keys)
        results: list[Probe | None] = [None] * len(requests)
        for i, key in enumerate(keys):
            if key in found:
                results[i] = found[key]
                self.stats.hits += 1
                if on_result:
                    on_result(i, found[key])
        todo = [i for i in range(len(requests)) if results[i] is None]
        if todo:
            self.stats.misses += len(todo)

            def store(j: int, probe: Probe) -> None:
                i = todo[j]
                if results[i] is not None:
                    return
                self.cache.put_probe(keys[i], self.model_id, requests[i], probe)
                results[i] = probe
                if on_result:
                    on_result(i, probe)

            probed = self.backend.probe([requests[i] for i in todo], on_result=store)
            for j, probe in enumerate(probed):
                store(j, probe)  # a backend that did not call on_result for this one
        return [p if p is not None else Probe(probs=None, error="backend returned no result") for p in results]

    def count_tokens(self, request: GenerationRequest) -> int:
        return self.backend.count_tokens(request)

    def close(self) -> None:
        self.backend.close()
