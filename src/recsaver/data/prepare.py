"""Raw dump -> user-disjoint, label-balanced train/test examples (paper Sections 2.1, 4.1).

The reviews are streamed once through Python (validation with exact line
numbers) into Parquet chunks; DuckDB then does the heavy work (dedupe, per-user
ordering, eligibility, user split, balanced sampling) out of core. Only the
sampled examples and their histories come back into Python.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..config.schema import DOMAINS, PrepareOptions, check_choices, setting
from ..store import DataStore
from .clean import clean_text
from .records import RATINGS, Example, HistoryEntry, Item, Target, example_id
from .sources import (
    FastPathUnavailable,
    FieldCaps,
    Layout,
    OnBadLine,
    ReadReport,
    detect_review_layout,
    iter_review_batches,
    iter_reviews,
    read_meta,
)

Domain = Literal["beauty", "movies"]

_SCHEMA = pa.schema(
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


@dataclass(frozen=True)
class PrepareConfig(PrepareOptions):
    """A domain's PrepareOptions, plus the caps of every text field and how the reviews are streamed.
    `caps` left out takes max_description_chars and max_review_chars (FieldCaps' defaults elsewhere)."""

    domain: str = setting(help="Prompt wording and brand fallbacks.", choices=DOMAINS)
    caps: FieldCaps | None = setting(None, "Character caps per field (Python and config files only).")
    batch_rows: int = setting(200_000, "Reviews per Parquet part while streaming.")
    memory_limit: str = setting("3GB", "DuckDB's memory limit.")

    @property
    def field_caps(self) -> FieldCaps:
        """`caps` as resolved (never None once built)."""
        assert self.caps is not None
        return self.caps

    @property
    def bad_lines(self) -> OnBadLine:
        """`on_bad_line` (text from the CLI or a config) as the readers' literal."""
        return "skip" if self.on_bad_line == "skip" else "error"

    def __post_init__(self) -> None:
        check_choices(self)
        if self.caps is None:
            object.__setattr__(self, "caps", FieldCaps(description=self.max_description_chars,
                                                       review_text=self.max_review_chars))
        if not 1 <= self.min_history <= self.max_history:
            raise ValueError(f"need 1 <= min_history <= max_history, got {self.min_history}, {self.max_history}")
        if self.train_per_label < 0 or self.test_per_label < 0:
            raise ValueError("per-label sizes must be >= 0")
        if self.test_fraction is not None and not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")

    @property
    def resolved_test_fraction(self) -> float:
        if self.test_fraction is not None:
            return self.test_fraction
        total = self.train_per_label + self.test_per_label
        return self.test_per_label / total if total else 0.5


@dataclass
class PrepareResult:
    stats: dict[str, Any]
    warnings: list[str]


Progress = Callable[[str, int, int], None]  # (phase, done, total)


def _stream_to_parquet(
    reviews: Path, work: Path, cfg: PrepareConfig, report: ReadReport, progress: Progress | None
) -> str:
    """Reviews -> Parquet chunks: the columnar fast path, or line by line when it declines."""
    layout = detect_review_layout(reviews)
    total = reviews.stat().st_size
    if progress:
        progress("read reviews", 0, total)
    try:
        part = 0
        for batch in iter_review_batches(reviews, layout, report):
            pq.write_table(pa.Table.from_batches([batch]).cast(_SCHEMA), work / f"reviews-{part:05d}.parquet",
                           compression="zstd")
            part += 1
        if progress:
            progress("read reviews", total, total)
        return layout
    except FastPathUnavailable:
        for stale in work.glob("reviews-*.parquet"):
            stale.unlink()
        report.records = report.lines = 0
    _stream_rows(reviews, layout, work, cfg, report, progress, total)
    return layout


def _stream_rows(reviews: Path, layout: Layout, work: Path, cfg: PrepareConfig, report: ReadReport,
                 progress: Progress | None, total: int) -> None:
    """The line-by-line reader: exact line and field in every error, and `--on-bad-line skip`."""
    on_progress = (lambda done: progress("read reviews", done, total)) if progress else None
    cols: list[list[Any]] = [[] for _ in _SCHEMA]
    part = 0

    def flush() -> None:
        nonlocal part, cols
        if cols[0]:
            table = pa.Table.from_arrays([pa.array(c, t.type) for c, t in zip(cols, _SCHEMA)], schema=_SCHEMA)
            pq.write_table(table, work / f"reviews-{part:05d}.parquet", compression="zstd")
            part += 1
            cols = [[] for _ in _SCHEMA]

    appenders = [c.append for c in cols]
    for row in iter_reviews(reviews, layout, report, cfg.bad_lines, on_progress):
        for append, value in zip(appenders, row):
            append(value)
        if len(cols[0]) >= cfg.batch_rows:
            flush()
            appenders = [c.append for c in cols]
    flush()
    if part == 0:
        raise ValueError(f"{reviews}: no valid reviews (lines read: {report.lines}, skipped: {dict(report.skipped)})")


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


def _to_example(raw: dict[str, Any], items: dict[str, Item], cfg: PrepareConfig) -> Example:
    item_id, ts, rating, _, _, user = raw["target"]
    caps = cfg.field_caps
    history = tuple(
        HistoryEntry(
            item_id=h_item,
            timestamp=h_ts,
            rating=h_rating,
            review_title=clean_text(h_title, caps.review_title),
            review_text=clean_text(h_text, caps.review_text),
            item=items.get(h_item, Item()),
        )
        for h_item, h_ts, h_rating, h_title, h_text, _ in raw["history"]
    )
    return Example(
        example_id=example_id(cfg.domain, user, item_id, ts),
        domain=cfg.domain,
        user_id=user,
        rating=int(rating),
        target=Target(item_id=item_id, timestamp=ts, item=items.get(item_id, Item())),
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


def prepare(
    reviews: Path,
    meta: Path | None,
    out: Path,
    cfg: PrepareConfig,
    progress: Progress | None = None,
) -> PrepareResult:
    """Run the whole pipeline and write OUT/train.jsonl, OUT/test.jsonl and OUT/stats.json."""
    started = time.time()
    reviews, out = Path(reviews), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = ReadReport()
    work = Path(tempfile.mkdtemp(prefix=".prepare-", dir=out))
    try:
        layout = _stream_to_parquet(reviews, work, cfg, report, progress)
        con = duckdb.connect()
        con.execute(f"SET memory_limit = '{cfg.memory_limit}'")
        con.execute(f"SET temp_directory = '{(work / 'duck').as_posix()}'")
        con.execute("SET preserve_insertion_order = false")
        if progress:
            progress("histories and splits", 0, 1)
        _select(con, work, cfg)
        raw_examples = _fetch_examples(con, work, cfg)
        if progress:
            progress("histories and splits", 1, 1)
        counts = {
            "reviews_valid": report.records,
            "duplicates_dropped": _scalar(con, "SELECT count(*) FROM dropped"),
            "users": _scalar(con, "SELECT count(DISTINCT user_id) FROM ordered"),
            "users_with_targets": _scalar(con, "SELECT count(*) FROM users"),
            "test_users": _scalar(con, "SELECT count(*) FROM users WHERE is_test"),
            "eligible_targets": _scalar(con, "SELECT count(*) FROM pool"),
            # i not in H_u (paper Eq. 1): a review of an item already in the history is no target.
            "targets_dropped_item_in_history": _scalar(
                con, "SELECT (SELECT count(*) FROM eligible) - (SELECT count(*) FROM candidates)"),
        }
        available = _label_counts(con, "pool")
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    wanted = {h[0] for ex in raw_examples for h in ex["history"]} | {ex["target"][0] for ex in raw_examples}
    meta_report = ReadReport()
    items: dict[str, Item] = {}
    if meta is not None:
        total = Path(meta).stat().st_size
        on_meta = (lambda done: progress("read metadata", done, total)) if progress else None
        items = read_meta(Path(meta), cfg.domain, wanted, meta_report, cfg.field_caps, cfg.bad_lines, on_meta)

    splits: dict[str, list[Example]] = {"train": [], "test": []}
    for raw in raw_examples:
        splits[raw["split"]].append(_to_example(raw, items, cfg))
    data = DataStore(out)
    for name, examples in splits.items():
        data.write_split(name, examples)

    selected = {s: {str(r): 0 for r in RATINGS} for s in splits}
    for name, examples in splits.items():
        for e in examples:
            selected[name][str(e.rating)] += 1
    asked = {"train": cfg.train_per_label, "test": cfg.test_per_label}
    shortfalls = {
        s: {r: asked[s] - n for r, n in selected[s].items() if n < asked[s]} for s in splits
    }
    warnings = [
        f"{s}: label {r} has {selected[s][r]} of {asked[s]} examples asked (short by {short})"
        for s in splits
        for r, short in shortfalls[s].items()
    ]
    stats = {
        "package": {"name": "recsaver", "version": __version__},
        "domain": cfg.domain,
        "sources": {
            "reviews": {"path": str(reviews), "sha256": report.sha256, "layout": layout, "lines": report.lines},
            "meta": None
            if meta is None
            else {"path": str(meta), "sha256": meta_report.sha256, "lines": meta_report.lines},
        },
        "params": {**asdict(cfg), "resolved_test_fraction": cfg.resolved_test_fraction},
        "counts": counts,
        "bad_lines": {
            "reviews": dict(report.skipped),
            "meta": dict(meta_report.skipped),
            "examples": report.first_skips + meta_report.first_skips,
        },
        "available_per_label": available,
        "selected_per_label": selected,
        "examples": {s: len(v) for s, v in splits.items()},
        "shortfalls": shortfalls,
        "items_without_metadata": len(wanted - set(items)) if meta is not None else len(wanted),
        "balanced": not any(shortfalls[s] for s in splits),
        "seconds": round(time.time() - started, 3),
    }
    data.write_stats(stats)
    return PrepareResult(stats=stats, warnings=warnings)
