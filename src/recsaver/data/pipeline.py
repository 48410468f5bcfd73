"""The source-independent half of `data prepare` and `data import`: reviews Parquet -> examples.

A source (an Amazon dump, or a generic interactions table) streams its reviews into Parquet parts of
`REVIEW_SCHEMA` with `PartWriter`; DuckDB then does the heavy work (dedupe, per-user ordering,
eligibility, user split, balanced sampling) out of core, and only the sampled examples and their
histories come back into Python. Keeping this in one place is what makes an imported table give the
very examples `data prepare` gives on the same reviews.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from .clean import clean_text
from .records import RATINGS, Example, HistoryEntry, Item, Target, example_id

if TYPE_CHECKING:
    from .prepare import PrepareConfig

# One review: seq orders ties (its line in the file), ts is milliseconds since the epoch, rating 1..5.
REVIEW_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("rating", pa.int8()),
        ("ts", pa.int64()),
        ("review_title", pa.string()),
        ("review_text", pa.string()),
    ]
)


class PartWriter:
    """Buffers review rows (in `REVIEW_SCHEMA` order) and writes them as numbered zstd Parquet parts."""

    def __init__(self, work: Path, batch_rows: int) -> None:
        self.work, self.batch_rows, self.parts = work, batch_rows, 0
        self._cols: list[list[Any]] = [[] for _ in REVIEW_SCHEMA]

    def add(self, row: Sequence[Any]) -> None:
        for col, value in zip(self._cols, row):
            col.append(value)
        if len(self._cols[0]) >= self.batch_rows:
            self.flush()

    def add_batch(self, batch: pa.RecordBatch) -> None:
        """A batch already in the review layout (the columnar fast path)."""
        self._write(pa.Table.from_batches([batch]).cast(REVIEW_SCHEMA))

    def flush(self) -> None:
        if self._cols[0]:
            arrays = [pa.array(c, t.type) for c, t in zip(self._cols, REVIEW_SCHEMA)]
            self._write(pa.Table.from_arrays(arrays, schema=REVIEW_SCHEMA))
            self._cols = [[] for _ in REVIEW_SCHEMA]

    def discard(self) -> None:
        """Drop every part written so far (a fast path that gave up midway)."""
        for stale in self.work.glob("reviews-*.parquet"):
            stale.unlink()
        self.parts = 0
        self._cols = [[] for _ in REVIEW_SCHEMA]

    def _write(self, table: pa.Table) -> None:
        pq.write_table(table, self.work / f"reviews-{self.parts:05d}.parquet", compression="zstd")
        self.parts += 1


_SQL_CANDIDATES = """
CREATE VIEW reviews AS SELECT * FROM read_parquet('{work}/reviews-*.parquet');
-- Exact duplicates (same user, time and text): texts are compared only where a user has
-- several reviews at one time, so the big text column never enters a hash table whole.
CREATE TABLE same_time AS
  SELECT user_id, ts FROM reviews GROUP BY user_id, ts HAVING count(*) > 1;
CREATE TABLE dropped AS
  SELECT seq FROM (
    SELECT r.seq, row_number() OVER (PARTITION BY r.user_id, r.ts, r.review_text ORDER BY r.seq) AS k
    FROM reviews r SEMI JOIN same_time USING (user_id, ts))
  WHERE k > 1;
CREATE TABLE ordered AS
  SELECT r.seq, r.user_id, r.item_id, r.rating, r.ts,
         row_number() OVER (PARTITION BY r.user_id ORDER BY r.ts, r.seq) - 1 AS pos
  FROM reviews r ANTI JOIN dropped USING (seq);
CREATE TABLE eligible AS
  SELECT * FROM ordered WHERE pos >= {min_h} {max_clause};
CREATE TABLE candidates AS
  SELECT c.*, row_number() OVER (PARTITION BY c.user_id ORDER BY c.pos DESC) AS from_last
  FROM eligible c
  WHERE NOT EXISTS (SELECT 1 FROM ordered o WHERE o.user_id = c.user_id AND o.item_id = c.item_id
                    AND o.pos < c.pos AND o.pos >= c.pos - {max_h});
CREATE TABLE users AS
  SELECT user_id,
         row_number() OVER (ORDER BY md5_number(user_id || '|{seed}')) <= ceil(count(*) OVER () * {frac}) AS is_test
  FROM (SELECT DISTINCT user_id FROM candidates);
CREATE TABLE pool AS
  SELECT c.*, CASE WHEN u.is_test THEN 'test' ELSE 'train' END AS split,
         md5_number(c.user_id || '|' || c.item_id || '|' || c.ts || '|{seed}') AS draw
  FROM candidates c JOIN users u USING (user_id) WHERE {target_clause};
CREATE TABLE chosen AS
  SELECT * FROM pool
  QUALIFY row_number() OVER (PARTITION BY split, rating ORDER BY draw)
          <= CASE WHEN split = 'test' THEN {test_n} ELSE {train_n} END;
"""


@dataclass
class Selection:
    """What DuckDB chose: the raw examples (targets with their history rows), counts, labels available."""

    raw_examples: list[dict[str, Any]]
    counts: dict[str, Any]
    available: dict[str, dict[str, int]]


def select(work: Path, cfg: PrepareConfig) -> Selection:
    """Histories, user split and balanced sampling over `work/reviews-*.parquet`."""
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{cfg.memory_limit}'")
        con.execute(f"SET temp_directory = '{(work / 'duck').as_posix()}'")
        con.execute("SET preserve_insertion_order = false")
        _select(con, work, cfg)
        raw_examples = _fetch_examples(con, work, cfg)
        counts = {
            "duplicates_dropped": _scalar(con, "SELECT count(*) FROM dropped"),
            "users": _scalar(con, "SELECT count(DISTINCT user_id) FROM ordered"),
            "users_with_targets": _scalar(con, "SELECT count(*) FROM users"),
            "test_users": _scalar(con, "SELECT count(*) FROM users WHERE is_test"),
            "eligible_targets": _scalar(con, "SELECT count(*) FROM pool"),
            # i not in H_u (paper Eq. 1): a review of an item already in the history is no target.
            "targets_dropped_item_in_history": _scalar(
                con, "SELECT (SELECT count(*) FROM eligible) - (SELECT count(*) FROM candidates)"),
        }
        return Selection(raw_examples, counts, _label_counts(con, "pool"))
    finally:
        con.close()


def _select(con: duckdb.DuckDBPyConnection, work: Path, cfg: PrepareConfig) -> None:
    max_clause = f"AND pos <= {int(cfg.max_history)}" if cfg.history_overflow == "skip" else ""
    target_clause = "c.from_last = 1" if cfg.targets == "last" else "TRUE"
    sql = _SQL_CANDIDATES.format(
        work=work.as_posix(),
        min_h=int(cfg.min_history),
        max_h=int(cfg.max_history),
        max_clause=max_clause,
        seed=int(cfg.seed),
        frac=float(cfg.resolved_test_fraction),
        target_clause=target_clause,
        test_n=int(cfg.test_per_label),
        train_n=int(cfg.train_per_label),
    )
    for statement in sql.split(";"):
        if statement.strip():
            con.execute(statement)


def _fetch_examples(con: duckdb.DuckDBPyConnection, work: Path, cfg: PrepareConfig) -> list[dict[str, Any]]:
    """Targets with their history rows and texts, ordered for a deterministic output."""
    rows = con.execute(
        f"""
        WITH hist AS (
          SELECT c.split, c.draw, c.seq AS target_seq, o.seq, o.pos
          FROM chosen c JOIN ordered o
            ON o.user_id = c.user_id AND o.pos < c.pos AND o.pos >= c.pos - {int(cfg.max_history)}
          UNION ALL
          SELECT split, draw, seq AS target_seq, seq, pos FROM chosen
        ),
        texts AS (
          SELECT seq, user_id, item_id, rating, ts, review_title, review_text
          FROM read_parquet('{work.as_posix()}/reviews-*.parquet') SEMI JOIN hist USING (seq)
        )
        SELECT h.split, h.draw, h.target_seq, h.seq, t.user_id, t.item_id, t.rating, t.ts,
               t.review_title, t.review_text
        FROM hist h JOIN texts t USING (seq)
        ORDER BY h.split, h.draw, h.pos
        """
    ).fetchall()
    grouped: dict[int, dict[str, Any]] = {}
    for split, draw, target_seq, seq, user, item, rating, ts, title, text in rows:
        ex = grouped.setdefault(target_seq, {"split": split, "draw": draw, "history": [], "target": None})
        entry = (item, ts, rating, title, text, user)
        if seq == target_seq:
            ex["target"] = entry
        else:
            ex["history"].append(entry)
    return sorted(grouped.values(), key=lambda e: (e["split"], e["draw"]))


def wanted_items(raw_examples: list[dict[str, Any]]) -> set[str]:
    """Ids of every item the chosen examples show (targets and history): the only metadata to read."""
    return {h[0] for ex in raw_examples for h in ex["history"]} | {ex["target"][0] for ex in raw_examples}


def to_example(raw: dict[str, Any], items: dict[str, Item], cfg: PrepareConfig, missing: Item = Item()) -> Example:
    """One raw example as an `Example`; an item without metadata gets `missing`."""
    item_id, ts, rating, _, _, user = raw["target"]
    caps = cfg.field_caps
    history = tuple(
        HistoryEntry(
            item_id=h_item,
            timestamp=h_ts,
            rating=h_rating,
            review_title=clean_text(h_title, caps.review_title),
            review_text=clean_text(h_text, caps.review_text),
            item=items.get(h_item, missing),
        )
        for h_item, h_ts, h_rating, h_title, h_text, _ in raw["history"]
    )
    return Example(
        example_id=example_id(cfg.domain, user, item_id, ts),
        domain=cfg.domain,
        user_id=user,
        rating=int(rating),
        target=Target(item_id=item_id, timestamp=ts, item=items.get(item_id, missing)),
        history=history,
    )


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """The single value an aggregate query returns (always one row)."""
    row = con.execute(sql).fetchone()
    assert row is not None, sql
    return row[0]


def _label_counts(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, dict[str, int]]:
    out = {s: {str(r): 0 for r in RATINGS} for s in ("train", "test")}
    for split, rating, n in con.execute(f"SELECT split, rating, count(*) FROM {table} GROUP BY ALL").fetchall():
        out[split][str(rating)] = int(n)
    return out
