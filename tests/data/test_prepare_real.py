"""The pipeline on every real dump in ../shared/data, checked against the paper's invariants."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest

from recsaver.data.prepare import PrepareConfig, prepare
from recsaver.data.records import load_examples

from ..conftest import DUMPS


def _examples(folder: Path):
    return {s: load_examples(folder / f"{s}.jsonl") for s in ("train", "test")}


@pytest.mark.parametrize("name", sorted(DUMPS))
def test_invariants(name: str, prepared_dumps: dict[str, Path]) -> None:
    folder = prepared_dumps[name]
    stats = json.loads((folder / "stats.json").read_text())
    splits = _examples(folder)
    users = {s: {e.user_id for e in ex} for s, ex in splits.items()}
    assert users["train"] and users["test"]
    assert not users["train"] & users["test"], "train and test share users"
    for split, examples in splits.items():
        assert len({e.example_id for e in examples}) == len(examples)
        for e in examples:
            assert 4 <= len(e.history) <= 10
            stamps = [h.timestamp for h in e.history]
            assert stamps == sorted(stamps), "history is not chronological"
            assert all(t <= e.target.timestamp for t in stamps), "history item after the target"
            assert e.target.item_id not in {h.item_id for h in e.history}, "target item leaked into history"
            assert 1 <= e.rating <= 5 and all(1 <= h.rating <= 5 for h in e.history)
        # Balanced up to the shortfall: every label gets min(asked, available).
        asked = stats["params"][f"{split}_per_label"]
        got = Counter(str(e.rating) for e in examples)
        for label, available in stats["available_per_label"][split].items():
            assert got[label] == min(asked, available)
            assert stats["shortfalls"][split].get(label, 0) == max(0, asked - available)


@pytest.mark.parametrize("name", sorted(DUMPS))
def test_stats_fingerprint_the_sources(name: str, prepared_dumps: dict[str, Path]) -> None:
    reviews, meta, _ = DUMPS[name]
    stats = json.loads((prepared_dumps[name] / "stats.json").read_text())
    assert stats["sources"]["reviews"]["sha256"] == hashlib.sha256(reviews.read_bytes()).hexdigest()
    if meta is not None:
        assert stats["sources"]["meta"]["sha256"] == hashlib.sha256(meta.read_bytes()).hexdigest()
    assert stats["package"]["version"]
    assert stats["sources"]["reviews"]["layout"] == ("2018" if "2018" in name else "2023")


def test_eligible_targets_match_an_independent_count(prepared_dumps: dict[str, Path]) -> None:
    """Recount eligible targets per label in plain Python and compare with the DuckDB pipeline."""
    reviews, _, _ = DUMPS["movies2023"]
    per_user: dict[str, list] = defaultdict(list)
    seen = set()
    for seq, line in enumerate(gzip.open(reviews), 1):
        r = orjson.loads(line)
        key = (r["user_id"], r["timestamp"], r["text"])
        if key in seen:
            continue
        seen.add(key)
        per_user[r["user_id"]].append((r["timestamp"], seq, int(r["rating"]), r["parent_asin"]))
    expected: Counter = Counter()
    for rows in per_user.values():
        rows.sort()
        for pos, (_, _, rating, item) in enumerate(rows):
            if 4 <= pos <= 10 and item not in {r[3] for r in rows[max(0, pos - 10):pos]}:
                expected[str(rating)] += 1
    stats = json.loads((prepared_dumps["movies2023"] / "stats.json").read_text())
    got = Counter()
    for split in ("train", "test"):
        got.update({k: v for k, v in stats["available_per_label"][split].items()})
    assert dict(got) == dict(expected)


def test_2018_duplicates_are_dropped_and_items_have_only_ids(prepared_dumps: dict[str, Path]) -> None:
    stats = json.loads((prepared_dumps["beauty2018"] / "stats.json").read_text())
    assert stats["counts"]["duplicates_dropped"] > 3000  # ~3,890 rows repeat across variant ASINs
    for e in _examples(prepared_dumps["beauty2018"])["train"]:
        assert e.target.item.title is None and e.target.item_id
        # Capped texts may coincide although the full texts differ; compare uncapped ones only.
        keys = [(h.timestamp, h.review_text) for h in e.history if not (h.review_text or "").endswith("…")]
        assert len(keys) == len(set(keys)), "a duplicate review survived"


def test_movies_items_without_title_keep_people_as_brand(prepared_dumps: dict[str, Path]) -> None:
    items = [h.item for e in _examples(prepared_dumps["movies2023"])["train"] for h in e.history]
    untitled = [i for i in items if i.title is None]
    assert untitled, "the Movies sample has Prime Video items without titles"
    assert sum(1 for i in untitled if i.brand) / len(untitled) > 0.9
    assert all("<" not in (i.description or "") and "]]>" not in (i.description or "") for i in items)
    assert all(len(i.description or "") <= 600 for i in items)


def test_seeded_and_deterministic(tmp_path: Path) -> None:
    reviews, meta, domain = DUMPS["beauty2023"]
    cfg = PrepareConfig(domain=domain, train_per_label=30, test_per_label=5)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    prepare(reviews, meta, a, cfg)
    prepare(reviews, meta, b, cfg)
    prepare(reviews, meta, c, PrepareConfig(domain=domain, train_per_label=30, test_per_label=5, seed=1))
    for split in ("train.jsonl", "test.jsonl"):
        assert (a / split).read_bytes() == (b / split).read_bytes()
    assert (a / "test.jsonl").read_bytes() != (c / "test.jsonl").read_bytes()


def test_last_target_per_user_and_truncated_histories(tmp_path: Path) -> None:
    reviews, meta, domain = DUMPS["movies2023"]
    result = prepare(reviews, meta, tmp_path, PrepareConfig(domain=domain, targets="last",
                                                            history_overflow="truncate"))
    splits = _examples(tmp_path)
    for examples in splits.values():
        users = [e.user_id for e in examples]
        assert len(users) == len(set(users))
        assert all(len(e.history) <= 10 for e in examples)
    # Movies users have 10-20 reviews, so truncation makes every user's last review a target.
    assert result.stats["counts"]["eligible_targets"] == result.stats["counts"]["users"]
    assert result.warnings, "the skewed sample cannot fill every label: a warning must say so"
