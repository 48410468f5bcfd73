"""Durable SQLite store of every model call: the resume mechanism.

Every successful generation is committed the moment it finishes (WAL mode), so
a run killed with `kill -9` loses at most the calls that were in flight. The
key is `GenerationRequest.key(model_id)`: model identity (with its file hash),
messages, sampling parameters, grammar and sample index, so a cached sample is
never served as a different sample. Failed calls are logged in their own table
for audit and retried on the next run; they never shadow a success.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import orjson

from .backends.base import Backend, Generation, GenerationRequest, OnResult

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
"""


def _request_blob(request: GenerationRequest) -> bytes:
    return orjson.dumps({
        "messages": request.messages, "prompt_text": request.prompt_text, "params": request.params.to_dict(),
        "sample_index": request.sample_index, "grammar": request.grammar, "rating_probs": request.rating_probs,
        "tag": request.tag,
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

    def get_many(self, keys: Sequence[str]) -> dict[str, Generation]:
        found: dict[str, Generation] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start:start + 500])
                marks = ",".join("?" * len(chunk))
                for key, blob in self._con.execute(
                    f"SELECT key, generation FROM generations WHERE key IN ({marks})", chunk
                ):
                    found[key] = Generation.from_dict(orjson.loads(blob), cached=True)
        return found

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

    def count(self) -> int:
        with self._lock:
            return self._con.execute("SELECT count(*) FROM generations").fetchone()[0]

    def failures(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._con.execute("SELECT key, error FROM failures ORDER BY created_at"))

    def close(self) -> None:
        with self._lock:
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
    hits: int = 0
    misses: int = 0


class CachedBackend:
    """Wraps a backend: cached requests are answered from SQLite, the rest generated and stored at once."""

    def __init__(self, backend: Backend, cache: GenerationCache):
        self.backend, self.cache = backend, cache
        self.model_id = backend.model_id
        self.context_length = backend.context_length
        self.stats = CacheStats()

    def generate(self, requests: Sequence[GenerationRequest], on_result: OnResult | None = None) -> list[Generation]:
        keys = [r.key(self.model_id) for r in requests]
        found = self.cache.get_many(keys)
        results: list[Generation | None] = [found.get(k) for k in keys]
        for i, g in enumerate(results):
            if g is not None and on_result:
                on_result(i, g)
        missing = [i for i, g in enumerate(results) if g is None]
        self.stats.hits += len(requests) - len(missing)
        self.stats.misses += len(missing)
        if missing:
            todo = [requests[i] for i in missing]

            def store(j: int, generation: Generation) -> None:
                i = missing[j]
                self.cache.put(keys[i], self.model_id, requests[i], generation)
                results[i] = generation
                if on_result:
                    on_result(i, generation)

            generated = self.backend.generate(todo, on_result=store)
            for j, generation in enumerate(generated):
                i = missing[j]
                if results[i] is None:  # a backend that did not call on_result for this one
                    self.cache.put(keys[i], self.model_id, requests[i], generation)
                    results[i] = generation
        return [g if g is not None else Generation(text=None, error="backend returned no result") for g in results]

    def count_tokens(self, request: GenerationRequest) -> int:
        return self.backend.count_tokens(request)

    def close(self) -> None:
        self.backend.close()
