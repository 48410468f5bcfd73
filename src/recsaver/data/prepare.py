"""Raw dump or table -> user-disjoint, label-balanced train/test examples (paper Sections 2.1, 4.1).

The reviews are streamed once (validation with exact line numbers) into Parquet
parts; DuckDB then does the heavy work (dedupe, per-user ordering, eligibility,
user split, balanced sampling) out of core (pipeline.py). Only the sampled
examples and their histories come back into Python.

Where the reviews and the items come from is a `Source`: an Amazon dump
(`DumpSource`, `data prepare`) or a generic interactions table with an optional
items table (`sources.generic.TableSource`, `data import`). Both feed the same
pipeline, so the same reviews give the same examples whichever way they came in.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from .. import __version__
from ..config.schema import DOMAINS, PrepareOptions, check_choices, setting
from ..store import DataStore
from .pipeline import PartWriter, select, to_example, wanted_items
from .records import RATINGS, Example, Item
from .sources import (
    SCHEMA_FIELDS,
    FastPathUnavailable,
    FieldCaps,
    OnBadLine,
    RatingScale,
    ReadReport,
    TableSource,
    detect_review_layout,
    iter_review_batches,
    iter_reviews,
    read_meta,
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


def parse_mapping(entries: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`--map FIELD=COLUMN` entries as field -> column; unknown or repeated fields are errors."""
    out: dict[str, str] = {}
    for entry in entries:
        name, sep, column = (part.strip() for part in entry.partition("="))
        if not sep or not name or not column:
            raise ValueError(f"map entry {entry!r}: write FIELD=COLUMN, e.g. rating=stars")
        if name not in SCHEMA_FIELDS:
            raise ValueError(f"map entry {entry!r}: unknown field {name!r}; fields: {', '.join(SCHEMA_FIELDS)}")
        if name in out:
            raise ValueError(f"map entries name field {name!r} twice ({out[name]!r} and {column!r})")
        out[name] = column
    return out


@dataclass(frozen=True)
class ImportConfig(PrepareConfig):
    """`recsaver data import`: PrepareConfig (the very same pipeline) plus how to read a generic table.

    The domain defaults to `generic` (neutral "item" wording): users' own data is no Amazon category."""

    domain: str = setting("generic", "Prompt wording (generic: neutral 'item').", choices=DOMAINS)
    map: tuple[str, ...] = setting((), "FIELD=COLUMN: read schema field FIELD (user_id, item_id, rating, timestamp, "
                                       "review_title, review_text, title, brand, categories, description, price) "
                                       "from column COLUMN, in both tables (repeatable or comma-separated).",
                                   comma=True)
    rating_scale: str = setting("1,5", "MIN,MAX of the ratings in the file; rescaled linearly to 1..5 and "
                                       "rounded half up.")

    def __post_init__(self) -> None:
        super().__post_init__()
        # Checked now, so that a bad --map or --rating-scale fails before any reading.
        parse_mapping(self.map)
        RatingScale.parse(self.rating_scale)

    @property
    def columns(self) -> dict[str, str]:
        """The --map entries as schema field -> column."""
        return parse_mapping(self.map)

    @property
    def scale(self) -> RatingScale:
        return RatingScale.parse(self.rating_scale)


@dataclass
class PrepareResult:
    stats: dict[str, Any]
    warnings: list[str]


Progress = Callable[[str, int, int], None]  # (phase, done, total)


class Source(Protocol):
    """Where the pipeline's reviews and items come from; it also says what it read for stats.json."""

    def write_reviews(self, parts: PartWriter, cfg: PrepareConfig, progress: Progress | None) -> int:
        """Stream every valid review into `parts` (bad lines raised or skipped); the number of valid reviews."""
        ...

    def read_items(self, wanted: set[str], cfg: PrepareConfig, progress: Progress | None) -> dict[str, Item]:
        """The `wanted` items that have metadata, by id."""
        ...

    @property
    def missing_item(self) -> Item:
        """The item of an id without metadata."""
        ...

    def describe(self) -> dict[str, Any]:
        """stats.json `sources`: paths, hashes and how they were read."""
        ...

    def bad_lines(self) -> dict[str, Any]:
        """stats.json `bad_lines`: skipped lines by file and reason, and the first ones."""
        ...

    def extra_stats(self) -> dict[str, Any]:
        """More stats.json keys of this kind of source."""
        ...


class DumpSource:
    """An Amazon review dump (2014, 2018 or 2023 layout) and its optional metadata dump."""

    def __init__(self, reviews: Path, meta: Path | None) -> None:
        self.reviews, self.meta = Path(reviews), None if meta is None else Path(meta)
        self.report, self.meta_report = ReadReport(), ReadReport()
        self.layout: str | None = None
        self.missing_item = Item()

    def write_reviews(self, parts: PartWriter, cfg: PrepareConfig, progress: Progress | None) -> int:
        """The columnar fast path, or line by line when it declines."""
        reviews, report = self.reviews, self.report
        layout = self.layout = detect_review_layout(reviews)
        total = reviews.stat().st_size
        if progress:
            progress("read reviews", 0, total)
        try:
            for batch in iter_review_batches(reviews, layout, report):
                parts.add_batch(batch)
            if progress:
                progress("read reviews", total, total)
            return report.records
        except FastPathUnavailable:
            parts.discard()
            report.records = report.lines = 0
        # The line-by-line reader: exact line and field in every error, and `--on-bad-line skip`.
        on_progress = (lambda done: progress("read reviews", done, total)) if progress else None
        for row in iter_reviews(reviews, layout, report, cfg.bad_lines, on_progress):
            parts.add(row)
        parts.flush()
        if parts.parts == 0:
            raise ValueError(f"{reviews}: no valid reviews (lines read: {report.lines}, "
                             f"skipped: {dict(report.skipped)})")
        return report.records

    def read_items(self, wanted: set[str], cfg: PrepareConfig, progress: Progress | None) -> dict[str, Item]:
        if self.meta is None:
            return {}
        total = self.meta.stat().st_size
        on_meta = (lambda done: progress("read metadata", done, total)) if progress else None
        return read_meta(self.meta, cfg.domain, wanted, self.meta_report, cfg.field_caps, cfg.bad_lines, on_meta)

    def describe(self) -> dict[str, Any]:
        report, meta_report = self.report, self.meta_report
        return {
            "reviews": {"path": str(self.reviews), "sha256": report.sha256, "layout": self.layout,
                        "lines": report.lines},
            "meta": None if self.meta is None
            else {"path": str(self.meta), "sha256": meta_report.sha256, "lines": meta_report.lines},
        }

    def bad_lines(self) -> dict[str, Any]:
        return {"reviews": dict(self.report.skipped), "meta": dict(self.meta_report.skipped),
                "examples": self.report.first_skips + self.meta_report.first_skips}

    def extra_stats(self) -> dict[str, Any]:
        return {}


def run(source: Source, out: Path, cfg: PrepareConfig, progress: Progress | None = None) -> PrepareResult:
    """The whole pipeline on any source: write OUT/train.jsonl, OUT/test.jsonl and OUT/stats.json."""
    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".prepare-", dir=out))
    try:
        reviews_valid = source.write_reviews(PartWriter(work, cfg.batch_rows), cfg, progress)
        if progress:
            progress("histories and splits", 0, 1)
        selection = select(work, cfg)
        if progress:
            progress("histories and splits", 1, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    raw_examples = selection.raw_examples
    wanted = wanted_items(raw_examples)
    items = source.read_items(wanted, cfg, progress)
    missing = source.missing_item

    splits: dict[str, list[Example]] = {"train": [], "test": []}
    for raw in raw_examples:
        splits[raw["split"]].append(to_example(raw, items, cfg, missing))
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
        "sources": source.describe(),
        **source.extra_stats(),
        "params": {**asdict(cfg), "resolved_test_fraction": cfg.resolved_test_fraction},
        "counts": {"reviews_valid": reviews_valid, **selection.counts},
        "bad_lines": source.bad_lines(),
        "available_per_label": selection.available,
        "selected_per_label": selected,
        "examples": {s: len(v) for s, v in splits.items()},
        "shortfalls": shortfalls,
        "items_without_metadata": len(wanted - set(items)),
        "balanced": not any(shortfalls[s] for s in splits),
        "seconds": round(time.time() - started, 3),
    }
    data.write_stats(stats)
    return PrepareResult(stats=stats, warnings=warnings)


def prepare(
    reviews: Path,
    meta: Path | None,
    out: Path,
    cfg: PrepareConfig,
    progress: Progress | None = None,
) -> PrepareResult:
    """An Amazon dump (reviews, optional metadata) -> OUT/train.jsonl, OUT/test.jsonl and OUT/stats.json."""
    return run(DumpSource(reviews, meta), out, cfg, progress)


def import_table(
    interactions: Path,
    items: Path | None,
    out: Path,
    cfg: ImportConfig,
    progress: Progress | None = None,
) -> PrepareResult:
    """A generic interactions table (and optional items table) -> the same files `prepare` writes.

    The schema, formats, column mapping, rating rescale and timestamp rule are in sources/generic.py."""
    return run(TableSource(interactions, items, cfg.columns, cfg.scale), out, cfg, progress)
