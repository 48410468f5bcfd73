#!/usr/bin/env python
"""Benchmark `recsaver.data.prepare.prepare` against a naive pandas pipeline.

Synthetic review dumps in the Amazon 2023 layout (gzipped JSONL plus a
matching meta file) are generated with distributions estimated from the real
samples in shared/data/amazon2023/*/reviews.jsonl.gz, cached, and then each
method runs in its own fresh subprocess so that wall time and peak RSS are
measured cleanly (peak RSS from os.wait4's rusage of that one child).

    python benchmarks/data_prepare.py                      # 1M and 10M reviews
    python benchmarks/data_prepare.py --sizes 100000       # quick check

Goal checked: 10M reviews in at most 120 s and 4 GiB peak RSS.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import platform
import queue
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
REAL_DIRS = ("All_Beauty", "Movies_and_TV")
GEN_VERSION = 1
GOAL_SIZE = 10_000_000
GOAL_SECONDS = 120.0
GOAL_RSS_MB = 4096.0  # 4 GiB; RSS figures below are MiB
MIB = 1024 * 1024


# --------------------------------------------------------------------------- profile of the real data


def estimate_profile(data_dir: Path) -> dict[str, Any]:
    """Empirical distributions from the real 2023 samples (pooled over both domains)."""
    import orjson

    files = sorted((data_dir / "amazon2023").glob("*/reviews.jsonl.gz"))
    if not files:
        raise SystemExit(f"no real data found under {data_dir / 'amazon2023'} (needed to estimate distributions)")
    per_user: dict[str, list[int]] = {}
    ratings: Counter = Counter()
    text_len, title_len, helpful, verified = [], [], [], []
    words: Counter = Counter()
    safe = re.compile(r"^[A-Za-z0-9.,!?'()&:;%$-]+$")
    for f in files:
        with gzip.open(f, "rb") as fh:
            for line in fh:
                r = orjson.loads(line)
                per_user.setdefault(f"{f.parent.name}|{r['user_id']}", []).append(int(r["timestamp"]))
                ratings[int(r["rating"])] += 1
                text, title = r.get("text") or "", r.get("title") or ""
                text_len.append(len(text.encode()))
                title_len.append(len(title.encode()))
                helpful.append(int(r.get("helpful_vote") or 0))
                verified.append(bool(r.get("verified_purchase")))
                words.update(w for w in (text + " " + title).split() if safe.match(w))
    hist_len = np.array([len(v) for v in per_user.values()], dtype=np.int64)
    gaps, first_ts = [], []
    for ts in per_user.values():
        ts.sort()
        first_ts.append(ts[0])
        gaps.extend(np.diff(ts).tolist())
    meta_title, meta_desc, meta_line = [], [], []
    for f in sorted((data_dir / "amazon2023").glob("*/meta.jsonl.gz")):
        with gzip.open(f, "rb") as fh:
            for line in fh:
                m = orjson.loads(line)
                meta_title.append(len((m.get("title") or "").encode()))
                meta_desc.append(len(" ".join(m.get("description") or []).encode()))
                meta_line.append(len(line))
    vocab, counts = zip(*words.most_common(20_000))
    return {
        "files": [str(f) for f in files],
        "reviews": int(sum(ratings.values())),
        "users": len(per_user),
        "hist_len": hist_len,
        "ratings": {k: ratings[k] / sum(ratings.values()) for k in range(1, 6)},
        "text_len": np.array(text_len, dtype=np.int64),
        "title_len": np.array(title_len, dtype=np.int64),
        "helpful": np.array(helpful, dtype=np.int64),
        "verified_share": float(np.mean(verified)),
        "gaps": np.maximum(np.array(gaps, dtype=np.int64), 1),
        "first_ts": np.array(first_ts, dtype=np.int64),
        "meta_title": np.array(meta_title or [40], dtype=np.int64),
        "meta_desc": np.array(meta_desc or [0], dtype=np.int64),
        "meta_extra": np.maximum(np.array(meta_line or [800], dtype=np.int64)
                                 - np.array(meta_title or [40]) - np.array(meta_desc or [0]) - 330, 0),
        "vocab": [w.encode() for w in vocab],
        "vocab_p": np.array(counts, dtype=np.float64) / sum(counts),
    }


def profile_summary(p: dict[str, Any]) -> dict[str, Any]:
    def q(a: Any) -> dict[str, float]:
        return {k: float(v) for k, v in zip(("p5", "p50", "p95", "mean"), [*np.percentile(a, [5, 50, 95]), a.mean()])}

    return {
        "source_files": p["files"],
        "source_reviews": p["reviews"],
        "source_users": p["users"],
        "reviews_per_user": q(p["hist_len"]),
        "rating_mix": p["ratings"],
        "text_bytes": q(p["text_len"]),
        "title_bytes": q(p["title_len"]),
    }


# --------------------------------------------------------------------------- synthetic dump


class _Corpus:
    """One big buffer of random words; string columns are consecutive slices of it (zero copy)."""

    def __init__(self, rng: np.random.Generator, vocab: list[bytes], p: np.ndarray, size: int = 96 * MIB):
        # words with their separator (a space; ". " now and then), gathered with numpy in chunks
        tokens = vocab + [w + b"." for w in vocab]
        probs = np.concatenate([p * 0.93, p * 0.07])
        flat = np.frombuffer(b"".join(t + b" " for t in tokens), dtype=np.uint8)
        tlen = np.array([len(t) + 1 for t in tokens], dtype=np.int64)
        tstart = np.concatenate([[0], np.cumsum(tlen)[:-1]])
        parts, have = [], 0
        while have < size:
            idx = rng.choice(len(tokens), size=1 << 20, p=probs)
            lens = tlen[idx]
            ends = np.cumsum(lens)
            gather = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(tstart[idx] - (ends - lens), lens)
            parts.append(flat[gather].tobytes())
            have += len(parts[-1])
        self.data = b"".join(parts)[:size]
        self.rng = rng

    def strings(self, lengths: np.ndarray):
        import pyarrow as pa

        total = int(lengths.sum())
        data = self.data
        if total >= len(data):
            data = data * (total // len(data) + 1)
        start = int(self.rng.integers(0, len(data) - total))
        offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        window = memoryview(data)[start: start + total]
        return pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets), pa.py_buffer(window))


class _GzipWriter:
    """Compression on a background thread (zlib releases the GIL), so it overlaps generation."""

    def __init__(self, path: Path):
        self.fh = gzip.open(path, "wb", compresslevel=1)
        self.q: queue.Queue = queue.Queue(maxsize=3)
        self.bytes = 0
        self.error: BaseException | None = None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        try:
            while (buf := self.q.get()) is not None:
                self.fh.write(buf)
                self.bytes += len(buf)
        except BaseException as e:  # noqa: BLE001
            self.error = e
            while self.q.get() is not None:
                pass

    def write_lines(self, arr) -> None:
        """Write the payload of a string array whose elements end with a newline."""
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64 if "large" in str(arr.type) else np.int32)
        offsets = offsets[arr.offset: arr.offset + len(arr) + 1]
        self.q.put(memoryview(arr.buffers()[2])[int(offsets[0]): int(offsets[-1])])

    def close(self) -> None:
        self.q.put(None)
        self.t.join()
        self.fh.close()
        if self.error:
            raise self.error


def _ids(prefix: str, idx: np.ndarray, width: int, mix: bool):
    import pyarrow as pa
    import pyarrow.compute as pc

    if mix:  # scatter ids so that the file is grouped by user but not sorted by user id
        idx = (idx.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) % np.uint64(10**18)
    s = pc.utf8_lpad(pa.array(idx).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, s, "")


def generate(size: int, folder: Path, seed: int, profile: dict[str, Any], dup_rate: float, items_per_review: float,
             block_rows: int = 250_000) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    corpus = _Corpus(rng, profile["vocab"], profile["vocab_p"])
    n_dup = int(round(size * dup_rate))
    n_base = size - n_dup
    n_items = max(10, int(size * items_per_review))

    # users: history lengths drawn from the empirical reviews-per-user distribution
    lens = rng.choice(profile["hist_len"], size=n_base // max(1, int(profile["hist_len"].min())) + 10)
    cum = np.cumsum(lens)
    n_users = int(np.searchsorted(cum, n_base) + 1)
    lens = lens[:n_users].copy()
    lens[-1] -= int(cum[n_users - 1] - n_base)
    user_start = np.concatenate([[0], np.cumsum(lens)])
    dup_rows = np.sort(rng.choice(n_base, size=n_dup, replace=False)) if n_dup else np.empty(0, np.int64)

    ratings = np.array(["1.0", "2.0", "3.0", "4.0", "5.0"])
    rating_p = np.array([profile["ratings"][k] for k in range(1, 6)])
    out = _GzipWriter(folder / "reviews.jsonl.gz.part")
    u0 = 0
    written = 0
    while u0 < n_users:
        u1 = int(np.searchsorted(user_start, user_start[u0] + block_rows, side="left"))
        u1 = max(u1, u0 + 1)
        u1 = min(u1, n_users)
        r0, r1 = int(user_start[u0]), int(user_start[u1])
        n = r1 - r0
        blens = lens[u0:u1]
        user = np.repeat(np.arange(u0, u1), blens)
        # per-user timestamps: empirical first time + cumulative empirical gaps (ms)
        first = rng.choice(profile["first_ts"], size=u1 - u0)
        gaps = rng.choice(profile["gaps"], size=n)
        starts_local = np.concatenate([[0], np.cumsum(blens)[:-1]])
        gaps[starts_local] = 0
        cg = np.cumsum(gaps)
        ts = np.repeat(first, blens) + cg - np.repeat(cg[starts_local], blens)
        item = np.minimum((n_items * rng.random(n) ** 3).astype(np.int64), n_items - 1)
        rating = rng.choice(5, size=n, p=rating_p)
        helpful = rng.choice(profile["helpful"], size=n)
        verified = rng.random(n) < profile["verified_share"]
        text = corpus.strings(rng.choice(profile["text_len"], size=n))
        title = corpus.strings(rng.choice(profile["title_len"], size=n))
        asin = _ids("B0", item, 8, False)
        line = pc.binary_join_element_wise(
            '{"rating": ', pa.array(ratings[rating]),
            ', "title": "', title, '", "text": "', text,
            '", "images": [], "asin": "', asin, '", "parent_asin": "', asin,
            '", "user_id": "', _ids("A", user, 27, True),
            '", "timestamp": ', pa.array(ts).cast(pa.string()),
            ', "helpful_vote": ', pa.array(helpful).cast(pa.string()),
            ', "verified_purchase": ', pa.array(np.where(verified, "true", "false")),
            "}\n", "",
        )
        # ~dup_rate exact duplicates, right after their original (same user, time, text)
        lo, hi = np.searchsorted(dup_rows, [r0, r1])
        if hi > lo:
            take = np.sort(np.concatenate([np.arange(n), dup_rows[lo:hi] - r0]))
            line = line.take(pa.array(take))
        out.write_lines(line)
        written += len(line)
        u0 = u1
    out.close()
    reviews_raw_bytes = out.bytes

    # metadata: one 2023-layout line per item
    meta = _GzipWriter(folder / "meta.jsonl.gz.part")
    for i0 in range(0, n_items, block_rows):
        i1 = min(n_items, i0 + block_rows)
        n = i1 - i0
        idx = np.arange(i0, i1)
        store = _ids("STORE", idx % max(1, n_items // 20), 6, False)
        price = rng.random(n) * 60 + 1
        price_s = pa.array(np.where(rng.random(n) < 0.3, np.char.mod("%.2f", price), "null"))
        line = pc.binary_join_element_wise(
            '{"main_category": "All Beauty", "title": "', corpus.strings(rng.choice(profile["meta_title"], size=n)),
            '", "average_rating": 4.2, "rating_number": 17, "features": [], "description": ["',
            corpus.strings(rng.choice(profile["meta_desc"], size=n)),
            '"], "price": ', price_s,
            ', "images": [], "videos": [], "store": "', store,
            '", "categories": [], "details": {"Brand": "', store, '", "Item Form": "',
            corpus.strings(rng.choice(profile["meta_extra"], size=n)),
            '"}, "parent_asin": "', _ids("B0", idx, 8, False), '", "bought_together": null}\n', "",
        )
        meta.write_lines(line)
    meta.close()
    os.replace(folder / "reviews.jsonl.gz.part", folder / "reviews.jsonl.gz")
    os.replace(folder / "meta.jsonl.gz.part", folder / "meta.jsonl.gz")
    return {
        "reviews": written,
        "users": n_users,
        "items": n_items,
        "exact_duplicates": n_dup,
        "reviews_uncompressed_bytes": reviews_raw_bytes,
        "reviews_gz_bytes": (folder / "reviews.jsonl.gz").stat().st_size,
        "meta_gz_bytes": (folder / "meta.jsonl.gz").stat().st_size,
        "generation_seconds": round(time.perf_counter() - t0, 2),
    }


def ensure_dump(size: int, args: argparse.Namespace, profile_box: dict[str, Any]) -> tuple[Path, Path, dict[str, Any]]:
    params = {
        "gen_version": GEN_VERSION,
        "size": size,
        "seed": args.seed,
        "dup_rate": args.dup_rate,
        "items_per_review": args.items_per_review,
        "layout": "2023",
    }
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    folder = Path(args.cache_dir) / f"reviews-{size}-{key}"
    marker = folder / "params.json"
    if marker.exists() and not args.regenerate:
        saved = json.loads(marker.read_text())
        if saved.get("params") == params and (folder / "reviews.jsonl.gz").exists():
            print(f"[gen] reusing cached dump {folder}", flush=True)
            return folder / "reviews.jsonl.gz", folder / "meta.jsonl.gz", saved["info"]
    print(f"[gen] generating {size:,} reviews into {folder} ...", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    info = generate(size, folder, args.seed, profile_box["profile"], args.dup_rate, args.items_per_review)
    marker.write_text(json.dumps({"params": params, "info": info}, indent=2))
    print(f"[gen] done in {info['generation_seconds']} s: {info['reviews_gz_bytes'] / MIB:.0f} MiB gz, "
          f"{info['reviews_uncompressed_bytes'] / MIB:.0f} MiB raw, {info['users']:,} users", flush=True)
    return folder / "reviews.jsonl.gz", folder / "meta.jsonl.gz", info


# --------------------------------------------------------------------------- children (run in a fresh process)


def _maxrss_mb() -> float:
    """Peak RSS of this process image. VmHWM, not getrusage: ru_maxrss survives execve and, after
    the vfork/posix_spawn that subprocess uses, starts at the *parent's* peak."""
    return _vm_hwm_mb(os.getpid()) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _vm_hwm_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _Clock:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.steps: list[dict[str, Any]] = []

    def step(self, name: str, seconds: float, level: int = 0) -> None:
        self.steps.append({"step": name, "seconds": round(seconds, 3), "peak_rss_mb_so_far": round(_maxrss_mb(), 1),
                           "level": level})


def child_prepare(a: argparse.Namespace) -> dict[str, Any]:
    """Run prepare() unchanged; module functions are wrapped only to time them."""
    import duckdb

    import recsaver.data.prepare as P

    clock = _Clock()

    def timed(name: str, fn, level: int = 0):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                clock.step(name, time.perf_counter() - t, level)
        return wrapper

    for name in ("_fetch_examples", "read_meta", "write_jsonl", "write_json"):
        setattr(P, name, timed(name, getattr(P, name)))
    P._stream_to_parquet = timed("_stream_to_parquet (incl. layout detection)", P._stream_to_parquet)
    P._select = timed("_select (DuckDB: dedupe, order, eligibility, split, sampling)", P._select)
    P.detect_review_layout = timed("detect_review_layout", P.detect_review_layout, level=1)
    to_example, spent = P._to_example, [0.0, 0]

    def counted_to_example(*args, **kwargs):
        t = time.perf_counter()
        try:
            return to_example(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t
            spent[1] += 1

    P._to_example = counted_to_example
    P.shutil = type("S", (), {"rmtree": staticmethod(timed("rmtree work dir", shutil.rmtree))})

    class Con:  # times every SQL statement prepare sends to DuckDB
        def __init__(self, con):
            self._con, self._label, self._t = con, "", 0.0

        def execute(self, sql, *args, **kwargs):
            label = " ".join(sql.split())[:70]
            t = time.perf_counter()
            self._con.execute(sql, *args, **kwargs)
            clock.step("sql: " + label, time.perf_counter() - t, 1)
            return self

        def fetchall(self):
            t = time.perf_counter()
            rows = self._con.fetchall()
            clock.step("sql fetchall", time.perf_counter() - t, 1)
            return rows

        def fetchone(self):
            return self._con.fetchone()

        def __getattr__(self, name):
            return getattr(self._con, name)

    class Duck:
        def __getattr__(self, name):
            return getattr(duckdb, name)

        @staticmethod
        def connect(*args, **kwargs):
            return Con(duckdb.connect(*args, **kwargs))

    P.duckdb = Duck()
    phases: dict[str, list[float]] = {}

    def progress(phase: str, done: int, total: int) -> None:
        now = time.perf_counter() - clock.t0
        phases.setdefault(phase, [now, now])[1] = now

    cfg = P.PrepareConfig(domain=a.domain)
    t = time.perf_counter()
    result = P.prepare(Path(a.reviews), Path(a.meta) if a.meta else None, Path(a.out), cfg, progress=progress)
    seconds = time.perf_counter() - t
    clock.step(f"_to_example x {spent[1]} (clean_text, Example)", spent[0])
    clock.step("other (counts, stats, unattributed)",
               seconds - sum(x["seconds"] for x in clock.steps if x["level"] == 0))
    s = result.stats
    return {
        "seconds": round(seconds, 3),
        "peak_rss_mb_self": round(_maxrss_mb(), 1),
        "steps": clock.steps,
        "progress_phases": {k: [round(v[0], 3), round(v[1], 3)] for k, v in phases.items()},
        "counts": s["counts"],
        "examples": s["examples"],
        "balanced": s["balanced"],
    }


def child_breakdown(a: argparse.Namespace) -> dict[str, Any]:
    """Where the streaming phase's time goes: gzip, line split, JSON, validation, columns, Parquet."""
    import tempfile

    import orjson
    import pyarrow as pa
    import pyarrow.parquet as pq

    import recsaver.data.prepare as P
    from recsaver.data import sources as S

    p = Path(a.reviews)
    clock = _Clock()

    def t(label: str, fn):
        t0 = time.perf_counter()
        r = fn()
        clock.step(label, time.perf_counter() - t0)
        return r

    def gzip_only() -> int:
        n = 0
        with gzip.open(p, "rb") as f:
            while b := f.read(1 << 20):
                n += len(b)
        return n

    t("gzip decompress only", gzip_only)
    t("LineStream lines (gzip + sha256 + line split)", lambda: sum(1 for _ in S.LineStream(p)))
    t("  + orjson.loads", lambda: sum(1 for _, line in S.LineStream(p) if orjson.loads(line)))
    t("iter_reviews (+ field validation)", lambda: sum(1 for _ in S.iter_reviews(p, "2023", S.ReadReport())))
    with tempfile.TemporaryDirectory(dir=a.out) as w:
        t("_stream_to_parquet (the whole phase)",
          lambda: P._stream_to_parquet(p, Path(w), P.PrepareConfig(domain=a.domain), S.ReadReport(), None))
    rows = list(S.iter_reviews(p, "2023", S.ReadReport()))

    def appends() -> list[list[Any]]:
        cols: list[list[Any]] = [[] for _ in P._SCHEMA]
        app = [c.append for c in cols]
        for row in rows:
            for f, v in zip(app, row):
                f(v)
        return cols

    cols = t("per-value list appends (rows already in memory)", appends)
    table = t("pa.array conversion", lambda: pa.Table.from_arrays(
        [pa.array(c, f.type) for c, f in zip(cols, P._SCHEMA)], schema=P._SCHEMA))
    with tempfile.TemporaryDirectory(dir=a.out) as w:
        t("pq.write_table zstd", lambda: pq.write_table(table, Path(w) / "x.parquet", compression="zstd"))
    return {"seconds": round(time.perf_counter() - clock.t0, 3), "peak_rss_mb_self": round(_maxrss_mb(), 1),
            "steps": clock.steps, "rows": len(rows)}


def child_baseline(a: argparse.Namespace) -> dict[str, Any]:
    """The straightforward pandas version: everything in memory."""
    import pandas as pd

    clock = _Clock()
    n_train, n_test, lo, hi, seed = 800, 100, 4, 10, 0
    t_all = t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        clock.step(name, now - t)
        t = now

    df = pd.read_json(a.reviews, lines=True, compression="gzip")  # "timestamp" becomes datetime64
    lap("read_json reviews")
    n_valid = len(df)
    df = df.drop_duplicates(subset=["user_id", "timestamp", "text"])
    lap("drop_duplicates")
    df = df.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
    lap("sort_values")
    df["pos"] = df.groupby("user_id").cumcount()
    lap("groupby cumcount")
    elig = df[(df["pos"] >= lo) & (df["pos"] <= hi)]
    users = elig["user_id"].drop_duplicates().sample(frac=1.0, random_state=seed)
    test_users = set(users.iloc[: math.ceil(len(users) * n_test / (n_train + n_test))])
    elig = elig.assign(split=["test" if u in test_users else "train" for u in elig["user_id"]])
    shuffled = elig.sample(frac=1.0, random_state=seed)
    rank = shuffled.groupby(["split", "rating"]).cumcount()
    chosen = shuffled[rank < shuffled["split"].map({"train": n_train, "test": n_test})]
    lap("filter, user split, per-label sampling")
    if a.meta:
        meta = pd.read_json(a.meta, lines=True, compression="gzip").set_index("parent_asin")
    else:
        meta = pd.DataFrame()
    lap("read_json meta")

    hist_idx = [j for i, p in zip(chosen.index, chosen["pos"]) for j in range(i - p, i + 1)]
    wanted = df.loc[hist_idx, "parent_asin"].unique()
    items = meta.loc[meta.index.intersection(wanted), ["title", "store", "price"]].to_dict("index")

    def item(asin: str) -> dict[str, Any]:
        m = items.get(asin)
        return {} if m is None else {"title": m["title"], "brand": m["store"], "price": m["price"]}

    def ms(ts: Any) -> int:
        return int(pd.Timestamp(ts).value // 1_000_000)

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {s: open(out / f"{s}.jsonl", "w") for s in ("train", "test")}
    cols = ["user_id", "parent_asin", "timestamp", "rating", "title", "text"]
    rows = iter(df.loc[hist_idx, cols].to_dict("records"))  # each history followed by its target
    for split, pos in zip(chosen["split"], chosen["pos"]):
        hist = [next(rows) for _ in range(pos)]
        tgt = next(rows)
        ex = {
            "user_id": tgt["user_id"], "rating": int(tgt["rating"]),
            "target": {"item_id": tgt["parent_asin"], "timestamp": ms(tgt["timestamp"]),
                       "item": item(tgt["parent_asin"])},
            "history": [
                {"item_id": h["parent_asin"], "timestamp": ms(h["timestamp"]), "rating": int(h["rating"]),
                 "review_title": h["title"], "review_text": h["text"], "item": item(h["parent_asin"])}
                for h in hist
            ],
        }
        files[split].write(json.dumps(ex, default=str) + "\n")
    for f in files.values():
        f.close()
    lap("histories and write")
    return {
        "seconds": round(time.perf_counter() - t_all, 3),
        "peak_rss_mb_self": round(_maxrss_mb(), 1),
        "steps": clock.steps,
        "counts": {"reviews_valid": n_valid, "duplicates_dropped": n_valid - len(df),
                   "users": int(df["user_id"].nunique()), "eligible_targets": len(elig)},
        "examples": chosen["split"].value_counts().to_dict(),
    }


# --------------------------------------------------------------------------- parent: run, measure, report


def run_child(mode: str, reviews: Path, meta: Path | None, out: Path, timeout: float, rss_kill_mb: float,
              domain: str) -> dict[str, Any]:
    import psutil

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    result_file = out.parent / f"{out.name}.result.json"
    result_file.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", mode, "--_reviews", str(reviews),
           "--_out", str(out), "--_result", str(result_file), "--domain", domain]
    if meta:
        cmd += ["--_meta", str(meta)]
    print(f"[run] {mode} on {reviews.parent.name} ...", flush=True)
    load_before = [round(x, 2) for x in os.getloadavg()]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    ps = psutil.Process(proc.pid)
    killed, polled_peak = None, 0
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            rss = ps.memory_info().rss
            polled_peak = max(polled_peak, rss, int(_vm_hwm_mb(proc.pid) * MIB))
        except psutil.Error:
            rss = 0
        elapsed = time.perf_counter() - t0
        if killed is None and (elapsed > timeout or rss > rss_kill_mb * MIB):
            killed = "timeout" if elapsed > timeout else f"RSS above {rss_kill_mb:.0f} MiB"
            proc.kill()
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    rec: dict[str, Any] = {
        "method": mode,
        "process_wall_seconds": round(wall, 3),
        "peak_rss_mb": round(polled_peak / MIB, 1),  # replaced by the child's own VmHWM below
        "ru_maxrss_mb_unreliable": round(ru.ru_maxrss / 1024, 1),
        "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 2),
        "loadavg_before": load_before,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "returncode": proc.returncode,
    }
    if killed or proc.returncode != 0 or not result_file.exists():
        rec["failed"] = killed or f"exit code {proc.returncode}"
        rec["seconds"] = round(wall, 3)
        print(f"[run] {mode} FAILED: {rec['failed']}", flush=True)
    else:
        rec.update(json.loads(result_file.read_text()))
        rec["peak_rss_mb"] = max(rec["peak_rss_mb_self"], rec["peak_rss_mb"])
    result_file.unlink(missing_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    return rec


def fmt_table(rows: list[dict[str, Any]]) -> str:
    head = ["size", "method", "seconds", "peak RSS MB", "reviews/s", "time ratio", "RSS ratio", "CPU s", "load", "note"]
    lines = []
    by = {(r["size"], r["method"]): r for r in rows}
    for r in rows:
        p = by.get((r["size"], "prepare"))
        ok = "seconds" in r and "failed" not in r and "skipped" not in r
        tr = rr = ""
        if r["method"] == "pandas" and ok and p and "failed" not in p:
            tr = f"{r['seconds'] / p['seconds']:.2f}x"
            rr = f"{r['peak_rss_mb'] / p['peak_rss_mb']:.2f}x"
        lines.append([
            f"{r['size']:,}", r["method"],
            f"{r['seconds']:.1f}" if ok else "-",
            f"{r['peak_rss_mb']:.0f}" if ok else "-",
            f"{r['size'] / r['seconds']:,.0f}" if ok else "-",
            tr, rr, f"{r['cpu_seconds']:.1f}" if ok else "-",
            f"{r['loadavg_before'][0]:.1f}" if "loadavg_before" in r else "-",
            r.get("skipped") or r.get("failed") or "",
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    out = ["  ".join(str(x).ljust(w) for x, w in zip(head, widths))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)) for line in lines]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--cache-dir", default="/tmp/recsaver-bench")
    ap.add_argument("--seed", type=int, default=20240501)
    ap.add_argument("--dup-rate", type=float, default=0.01, help="share of exact duplicate review lines")
    ap.add_argument("--items-per-review", type=float, default=0.1,
                    help="distinct items / reviews (full 2023 dumps: Beauty ~0.16, Movies ~0.04)")
    ap.add_argument("--domain", default="beauty", choices=["beauty", "movies"])
    ap.add_argument("--no-meta", action="store_true", help="run without the meta file")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--prepare-timeout", type=float, default=3600)
    ap.add_argument("--baseline-timeout", type=float, default=900)
    ap.add_argument("--memory-share", type=float, default=0.75,
                    help="skip/kill a run whose (estimated) RSS exceeds this share of the machine's RAM")
    ap.add_argument("--regenerate", action="store_true", help="ignore cached dumps")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "data_prepare.json"))
    ap.add_argument("--breakdown", action="store_true",
                    help="also time the pieces of prepare's streaming phase (gzip, JSON, validation, Parquet) "
                         "on the smallest size")
    ap.add_argument("--_child", choices=["prepare", "pandas", "breakdown"], help=argparse.SUPPRESS)
    ap.add_argument("--_reviews", help=argparse.SUPPRESS)
    ap.add_argument("--_meta", help=argparse.SUPPRESS)
    ap.add_argument("--_out", help=argparse.SUPPRESS)
    ap.add_argument("--_result", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args._child:
        ns = argparse.Namespace(reviews=args._reviews, meta=args._meta, out=args._out, domain=args.domain)
        res = {"prepare": child_prepare, "pandas": child_baseline, "breakdown": child_breakdown}[args._child](ns)
        Path(args._result).write_text(json.dumps(res, default=str))
        return

    import psutil

    total_mb = psutil.virtual_memory().total / MIB
    rss_cap_mb = total_mb * args.memory_share
    sizes = sorted(set(args.sizes))
    profile_box: dict[str, Any] = {"profile": estimate_profile(SHARED_DATA)}
    rows: list[dict[str, Any]] = []
    dumps: dict[int, dict[str, Any]] = {}
    ref_baseline: dict[str, Any] | None = None
    work = Path(args.cache_dir) / "runs"
    for size in sizes:
        reviews, meta, info = ensure_dump(size, args, profile_box)
        dumps[size] = info
        meta_arg = None if args.no_meta else meta
        rec = run_child("prepare", reviews, meta_arg, work / f"prepare-{size}", args.prepare_timeout, rss_cap_mb,
                        args.domain)
        rows.append({"size": size, **rec})
        if args.no_baseline:
            continue
        skip = None
        if ref_baseline is not None:
            k = size / ref_baseline["size"]
            est_rss, est_s = ref_baseline["peak_rss_mb"] * k, ref_baseline["seconds"] * k
            if est_rss > rss_cap_mb:
                skip = (f"skipped: est. {est_rss / 1024:.0f} GiB RSS (linear from {ref_baseline['size']:,}) "
                        f"> {rss_cap_mb / 1024:.0f} GiB cap of {total_mb / 1024:.0f} GiB RAM")
            elif est_s > args.baseline_timeout:
                skip = f"skipped: est. {est_s:.0f} s > timeout {args.baseline_timeout:.0f} s"
        if skip:
            print(f"[run] pandas at {size:,}: {skip}", flush=True)
            rows.append({"size": size, "method": "pandas", "skipped": skip})
            continue
        rec = run_child("pandas", reviews, meta_arg, work / f"pandas-{size}", args.baseline_timeout, rss_cap_mb,
                        args.domain)
        rows.append({"size": size, **rec})
        if "failed" not in rec:
            ref_baseline = {"size": size, **rec}
    breakdown = None
    if args.breakdown:
        reviews, _, _ = ensure_dump(sizes[0], args, profile_box)
        breakdown = {"size": sizes[0], **run_child("breakdown", reviews, None, work / "breakdown",
                                                    args.prepare_timeout, rss_cap_mb, args.domain)}
    shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"machine: {os.cpu_count()} CPUs, {total_mb / 1024:.1f} GiB RAM; python {platform.python_version()}")
    print(fmt_table(rows))

    prep = [r for r in rows if r["method"] == "prepare" and "failed" not in r]
    linearity = []
    for a, b in zip(prep, prep[1:]):
        ratio = (b["seconds"] / b["size"]) / (a["seconds"] / a["size"])
        cpu_ratio = (b["cpu_seconds"] / b["size"]) / (a["cpu_seconds"] / a["size"])
        linearity.append({"from": a["size"], "to": b["size"], "time_per_review_ratio": round(ratio, 3),
                          "cpu_per_review_ratio": round(cpu_ratio, 3)})
        print(f"prepare linearity {b['size']:,} vs {a['size']:,}: time/review ratio "
              f"{b['seconds']:.1f} / ({b['size'] / a['size']:g} x {a['seconds']:.1f}) = {ratio:.2f}"
              f"  (CPU time/review ratio {cpu_ratio:.2f})")
    goal_row = next((r for r in prep if r["size"] == GOAL_SIZE), None)
    goal: dict[str, Any] = {"size": GOAL_SIZE, "max_seconds": GOAL_SECONDS, "max_rss_mb": GOAL_RSS_MB}
    if goal_row:
        goal.update(seconds=goal_row["seconds"], rss_mb=goal_row["peak_rss_mb"],
                    holds=goal_row["seconds"] <= GOAL_SECONDS and goal_row["peak_rss_mb"] <= GOAL_RSS_MB)
        print(f"goal (10M reviews in <= {GOAL_SECONDS:.0f} s and <= {GOAL_RSS_MB:.0f} MiB): "
              f"{'HOLDS' if goal['holds'] else 'FAILS'} "
              f"({goal_row['seconds']:.1f} s, {goal_row['peak_rss_mb']:.0f} MiB)")
    elif prep:
        big = prep[-1]
        est = big["seconds"] * GOAL_SIZE / big["size"]
        goal.update(holds=None, linear_estimate_seconds=round(est, 1))
        print(f"goal (10M reviews in <= {GOAL_SECONDS:.0f} s and <= {GOAL_RSS_MB:.0f} MiB): not measured "
              f"(linear estimate from {big['size']:,}: {est:.0f} s)")
    for r in prep:
        print(f"\nprepare phases at {r['size']:,} (seconds, peak RSS MiB so far):")
        for s in r["steps"]:
            print(f"  {s['seconds']:8.2f}  {s['peak_rss_mb_so_far']:8.0f}  {'    ' * s['level']}{s['step']}")
        print(f"  counts: {r['counts']}  examples: {r['examples']}")
    for r in rows:
        if r["method"] == "pandas" and "steps" in r:
            print(f"\npandas steps at {r['size']:,} (seconds, peak RSS MiB so far):")
            for s in r["steps"]:
                print(f"  {s['seconds']:8.2f}  {s['peak_rss_mb_so_far']:8.0f}  {s['step']}")
            print(f"  counts: {r['counts']}  examples: {r['examples']}")

    if breakdown and "steps" in breakdown:
        print(f"\nstreaming-phase breakdown at {breakdown['size']:,} "
              "(seconds; the lines nest: each includes the one above):")
        for st in breakdown["steps"]:
            print(f"  {st['seconds']:8.2f}  {st['step']}")
    result = {
        "machine": {"cpus": os.cpu_count(), "ram_gib": round(total_mb / 1024, 1), "python": platform.python_version(),
                    "platform": platform.platform()},
        "versions": _versions(),
        "generator": {"seed": args.seed, "dup_rate": args.dup_rate, "items_per_review": args.items_per_review,
                      "gen_version": GEN_VERSION,
                      "profile": profile_summary(profile_box["profile"]) if "profile" in profile_box else None},
        "dumps": {str(k): v for k, v in dumps.items()},
        "runs": rows,
        "stream_breakdown": breakdown,
        "prepare_linearity": linearity,
        "goal": goal,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nresults written to {path}")


def _versions() -> dict[str, str]:
    out = {}
    for name in ("duckdb", "pyarrow", "pandas", "numpy", "orjson"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001
            out[name] = "?"
    return out


if __name__ == "__main__":
    main()
