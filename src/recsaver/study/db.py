"""The study database: one SQLite file (WAL) holding items, raters, assignments and answers.

Why SQLite: raters answer concurrently through the web app, each answer must be durable the
moment it is sent, and the whole study travels as one file. Every connection runs in WAL
mode with a busy timeout, and every write is one `BEGIN IMMEDIATE` transaction, so two
raters saving at the same instant both land (one waits for the other's lock) instead of
one being lost.

Tokens are never stored: only their SHA-256, compared with `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answers import ERROR_TYPES, Answer

DB_NAME = "study.sqlite"
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  run_id INTEGER PRIMARY KEY, path TEXT NOT NULL, model TEXT NOT NULL, method TEXT, ablation TEXT);
CREATE TABLE IF NOT EXISTS items (
  item_id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(run_id),
  example_id TEXT NOT NULL, domain TEXT NOT NULL, item_label TEXT NOT NULL,
  rating_true INTEGER NOT NULL, rating_pred INTEGER,
  history TEXT NOT NULL, new_item TEXT NOT NULL,
  reasoning TEXT NOT NULL, reasoning_original TEXT NOT NULL, redacted INTEGER NOT NULL DEFAULT 0,
  UNIQUE (run_id, example_id));
CREATE TABLE IF NOT EXISTS raters (
  rater_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, token_hash TEXT,
  source TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assignments (
  rater_id INTEGER NOT NULL REFERENCES raters(rater_id),
  item_id INTEGER NOT NULL REFERENCES items(item_id),
  position INTEGER NOT NULL,
  PRIMARY KEY (rater_id, item_id), UNIQUE (rater_id, position));
CREATE TABLE IF NOT EXISTS answers (
  rater_id INTEGER NOT NULL, item_id INTEGER NOT NULL,
  coherence INTEGER CHECK (coherence BETWEEN 1 AND 5),
  faithful INTEGER CHECK (faithful IN (0, 1)),
  insightfulness INTEGER CHECK (insightfulness BETWEEN 1 AND 5),
  err_stats INTEGER NOT NULL DEFAULT 0, err_info INTEGER NOT NULL DEFAULT 0,
  err_arith INTEGER NOT NULL DEFAULT 0, err_other INTEGER NOT NULL DEFAULT 0,
  note TEXT NOT NULL DEFAULT '', complete INTEGER NOT NULL, source TEXT NOT NULL, updated_at TEXT NOT NULL,
  PRIMARY KEY (rater_id, item_id),
  FOREIGN KEY (rater_id, item_id) REFERENCES assignments(rater_id, item_id));
"""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _inserted_id(cur: sqlite3.Cursor) -> int:
    """The row id an INSERT just created (sqlite3 types `lastrowid` as Optional)."""
    assert cur.lastrowid is not None, "no row was inserted"
    return int(cur.lastrowid)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class Item:
    item_id: int
    run_id: int
    model: str
    example_id: str
    domain: str
    item_label: str
    rating_true: int
    rating_pred: int | None
    history: str
    new_item: str
    reasoning: str
    redacted: int


@dataclass(frozen=True)
class Rater:
    rater_id: int
    name: str
    source: str


@dataclass(frozen=True)
class Progress:
    rater: Rater
    assigned: int
    complete: int
    started: int
    last_update: str | None


class StudyDB:
    """A connection to STUDY/study.sqlite. Open one per thread (the web app opens one per request)."""

    def __init__(self, study: Path, *, create: bool = False) -> None:
        self.dir = Path(study)
        self.path = self.dir / DB_NAME
        if not create and not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no study database (run `recsaver study create` first)")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA busy_timeout = 30000")
        self.conn.execute("PRAGMA foreign_keys = ON")
        if create:
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.executescript(_SCHEMA)
            os.chmod(self.path, 0o600)  # it holds the CSRF secret and the token hashes

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> StudyDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One immediate transaction: takes the write lock up front, so it never fails half-way on a lock."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # ---- meta -------------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["value"]

    def set_meta(self, conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (key, value))

    def config(self) -> dict[str, Any]:
        return json.loads(self.meta("config") or "{}")

    def init_study(self, config: dict[str, Any]) -> str:
        """Store the config and fresh secrets; return the admin token (shown once, stored hashed)."""
        admin = secrets.token_urlsafe(32)
        with self.write() as c:
            self.set_meta(c, "schema_version", SCHEMA_VERSION)
            self.set_meta(c, "created_at", _now())
            self.set_meta(c, "config", json.dumps(config, sort_keys=True))
            self.set_meta(c, "admin_token_hash", hash_token(admin))
            self.set_meta(c, "csrf_secret", secrets.token_hex(32))
            self.set_meta(c, "seed", str(config.get("seed", 0)))
        return admin

    def csrf_secret(self) -> bytes:
        return bytes.fromhex(self.meta("csrf_secret") or "")

    def check_admin(self, token: str) -> bool:
        stored = self.meta("admin_token_hash") or ""
        return bool(token) and hmac.compare_digest(hash_token(token), stored)

    # ---- items ------------------------------------------------------------------------------------

    def add_run(self, conn: sqlite3.Connection, path: str, model: str, method: str | None,
                ablation: str | None) -> int:
        cur = conn.execute("INSERT INTO runs(path, model, method, ablation) VALUES (?, ?, ?, ?)",
                           (path, model, method, ablation))
        return _inserted_id(cur)

    def add_item(self, conn: sqlite3.Connection, *, run_id: int, example_id: str, domain: str, item_label: str,
                 rating_true: int, rating_pred: int | None, history: str, new_item: str, reasoning: str,
                 reasoning_original: str, redacted: int = 0) -> int:
        cur = conn.execute(
            "INSERT INTO items(run_id, example_id, domain, item_label, rating_true, rating_pred, history, new_item,"
            " reasoning, reasoning_original, redacted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, example_id, domain, item_label, rating_true, rating_pred, history, new_item, reasoning,
             reasoning_original, redacted))
        return _inserted_id(cur)

    def items(self) -> list[Item]:
        rows = self.conn.execute(
            "SELECT i.*, r.model FROM items i JOIN runs r USING (run_id) ORDER BY i.item_id").fetchall()
        return [_item(r) for r in rows]

    def runs(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY run_id")]

    # ---- raters -----------------------------------------------------------------------------------

    def add_rater(self, name: str, *, max_items: int | None = None, with_token: bool = True,
                  source: str = "web") -> tuple[Rater, str | None, int]:
        """Create a rater and assign the items that still lack raters; return (rater, token, assigned)."""
        name = name.strip()
        if not name or len(name) > 80:
            raise ValueError("a rater name must be 1-80 characters")
        token = secrets.token_urlsafe(32) if with_token else None
        per_item = int(self.config().get("raters", 3))
        with self.write() as c:
            if c.execute("SELECT 1 FROM raters WHERE name = ?", (name,)).fetchone():
                raise ValueError(f"a rater named {name!r} already exists")
            cur = c.execute("INSERT INTO raters(name, token_hash, source, created_at) VALUES (?, ?, ?, ?)",
                            (name, hash_token(token) if token else None, source, _now()))
            rater_id = _inserted_id(cur)
            open_items = [r["item_id"] for r in c.execute(
                "SELECT i.item_id FROM items i LEFT JOIN assignments a USING (item_id) GROUP BY i.item_id"
                " HAVING COUNT(a.rater_id) < ? ORDER BY i.item_id", (per_item,))]
            if max_items is not None:
                open_items = open_items[:max_items]
            # Each rater sees the items in an own, reproducible order, so order effects average out.
            random.Random(f"{self.meta('seed')}:{name}").shuffle(open_items)
            c.executemany("INSERT INTO assignments(rater_id, item_id, position) VALUES (?, ?, ?)",
                          [(rater_id, item_id, k) for k, item_id in enumerate(open_items, 1)])
        return Rater(rater_id, name, source), token, len(open_items)

    def rater_by_token(self, token: str) -> Rater | None:
        """Constant-time check against every stored hash (no early exit, no SQL lookup by secret)."""
        if not token:
            return None
        wanted = hash_token(token)
        found = None
        for row in self.conn.execute("SELECT rater_id, name, source, token_hash FROM raters"):
            if row["token_hash"] and hmac.compare_digest(wanted, row["token_hash"]):
                found = Rater(row["rater_id"], row["name"], row["source"])
        return found

    def rater_by_name(self, name: str) -> Rater | None:
        row = self.conn.execute("SELECT rater_id, name, source FROM raters WHERE name = ?", (name,)).fetchone()
        return None if row is None else Rater(row["rater_id"], row["name"], row["source"])

    def raters(self) -> list[Rater]:
        return [Rater(r["rater_id"], r["name"], r["source"])
                for r in self.conn.execute("SELECT rater_id, name, source FROM raters ORDER BY rater_id")]

    def ensure_assignment(self, conn: sqlite3.Connection, rater_id: int, item_id: int) -> None:
        if conn.execute("SELECT 1 FROM assignments WHERE rater_id = ? AND item_id = ?",
                        (rater_id, item_id)).fetchone():
            return
        (last,) = conn.execute("SELECT COALESCE(MAX(position), 0) FROM assignments WHERE rater_id = ?",
                               (rater_id,)).fetchone()
        conn.execute("INSERT INTO assignments(rater_id, item_id, position) VALUES (?, ?, ?)",
                     (rater_id, item_id, last + 1))

    # ---- a rater's view (every query is scoped by rater_id) ---------------------------------------

    def assigned(self, rater_id: int) -> list[tuple[int, Item, Answer | None]]:
        rows = self.conn.execute(
            "SELECT a.position, i.*, r.model, ans.coherence, ans.faithful, ans.insightfulness, ans.err_stats,"
            " ans.err_info, ans.err_arith, ans.err_other, ans.note, ans.complete AS answered"
            " FROM assignments a JOIN items i USING (item_id) JOIN runs r USING (run_id)"
            " LEFT JOIN answers ans ON ans.rater_id = a.rater_id AND ans.item_id = a.item_id"
            " WHERE a.rater_id = ? ORDER BY a.position", (rater_id,)).fetchall()
        return [(r["position"], _item(r), _answer(r) if r["answered"] is not None else None) for r in rows]

    def task(self, rater_id: int, position: int) -> tuple[Item, Answer | None] | None:
        for pos, item, answer in self.assigned(rater_id):
            if pos == position:
                return item, answer
        return None

    def save_answer(self, rater_id: int, item_id: int, answer: Answer, source: str = "web") -> None:
        """Upsert one answer in its own transaction; the assignment must exist (foreign key)."""
        with self.write() as c:
            _upsert(c, rater_id, item_id, answer, source)

    def progress(self) -> list[Progress]:
        rows = self.conn.execute(
            "SELECT r.rater_id, r.name, r.source, COUNT(a.item_id) AS assigned,"
            " COALESCE(SUM(ans.complete), 0) AS complete, COUNT(ans.item_id) AS started,"
            " MAX(ans.updated_at) AS last_update"
            " FROM raters r LEFT JOIN assignments a USING (rater_id)"
            " LEFT JOIN answers ans ON ans.rater_id = a.rater_id AND ans.item_id = a.item_id"
            " GROUP BY r.rater_id ORDER BY r.rater_id").fetchall()
        return [Progress(Rater(r["rater_id"], r["name"], r["source"]), r["assigned"], r["complete"], r["started"],
                         r["last_update"]) for r in rows]

    def answer_rows(self, complete_only: bool = False) -> list[dict[str, Any]]:
        """Every answer with its item's identity (no gold or predicted rating): the CSV export."""
        rows = self.conn.execute(
            "SELECT ans.item_id, i.example_id, i.domain, r.model, rt.name AS rater, ans.coherence, ans.faithful,"
            " ans.insightfulness, ans.err_stats, ans.err_info, ans.err_arith, ans.err_other, ans.note,"
            " ans.complete, ans.source, ans.updated_at"
            " FROM answers ans JOIN items i USING (item_id) JOIN runs r USING (run_id)"
            " JOIN raters rt USING (rater_id)"
            + (" WHERE ans.complete = 1" if complete_only else "") + " ORDER BY ans.item_id, rt.rater_id").fetchall()
        return [dict(r) for r in rows]


def _upsert(conn: sqlite3.Connection, rater_id: int, item_id: int, answer: Answer, source: str) -> None:
    errors = {f"err_{k}": int(k in answer.errors) for k, _ in ERROR_TYPES}
    conn.execute(
        "INSERT INTO answers(rater_id, item_id, coherence, faithful, insightfulness, err_stats, err_info, err_arith,"
        " err_other, note, complete, source, updated_at)"
        " VALUES (:rater_id, :item_id, :coherence, :faithful, :insightfulness, :err_stats, :err_info, :err_arith,"
        " :err_other, :note, :complete, :source, :updated_at)"
        " ON CONFLICT(rater_id, item_id) DO UPDATE SET coherence = excluded.coherence,"
        " faithful = excluded.faithful, insightfulness = excluded.insightfulness, err_stats = excluded.err_stats,"
        " err_info = excluded.err_info, err_arith = excluded.err_arith, err_other = excluded.err_other,"
        " note = excluded.note, complete = excluded.complete, source = excluded.source,"
        " updated_at = excluded.updated_at",
        {"rater_id": rater_id, "item_id": item_id, "coherence": answer.coherence,
         "faithful": None if answer.faithful is None else int(answer.faithful),
         "insightfulness": answer.insightfulness, **errors, "note": answer.note,
         "complete": int(answer.complete), "source": source, "updated_at": _now()})


def save_many(db: StudyDB, rows: Sequence[tuple[int, int, Answer]], source: str) -> None:
    """Several answers in ONE transaction (an import lands whole or not at all)."""
    with db.write() as c:
        for rater_id, item_id, answer in rows:
            db.ensure_assignment(c, rater_id, item_id)
            _upsert(c, rater_id, item_id, answer, source)


def _item(r: sqlite3.Row) -> Item:
    return Item(r["item_id"], r["run_id"], r["model"], r["example_id"], r["domain"], r["item_label"],
                r["rating_true"], r["rating_pred"], r["history"], r["new_item"], r["reasoning"], r["redacted"])


def _answer(r: sqlite3.Row) -> Answer:
    return Answer(
        coherence=r["coherence"], faithful=None if r["faithful"] is None else bool(r["faithful"]),
        insightfulness=r["insightfulness"],
        errors=frozenset(k for k, _ in ERROR_TYPES if r[f"err_{k}"]), note=r["note"] or "")
