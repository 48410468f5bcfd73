"""Fine-tuning data with reasoning (paper Section 2.3, Eq. 3; Section 4.3, Tables 4 and 5).

Two steps, each writing a folder:

1. `run_distill_sample` (TD): M teacher answers per train example at temperature T > 0,
   through the same request building as `recsaver predict --method cot --samples M`
   (so the llama.cpp backend runs the M samples of one prompt back to back on a shared
   prompt, and every call is cached: a killed run resumes where it stopped). TD keeps the
   examples exactly as the teacher saw them (history trimmed to its context), so the
   build step needs nothing but TD.
2. `build_sft` (SFT): one training row per kept sample, rendered by the same PromptBuilder
   that renders inference prompts; the target is the teacher's reasoning followed by the
   GOLD rating. The rating-only variant (Table 4's "no reasoning" rows) has one row per
   example with the direct prompt and just the gold rating.

Filters compare the teacher's rating t with the gold rating g (Section 4.3):
none keeps all; 5-class keeps t == g; binary keeps (t > 3) == (g > 3); 1-off keeps |t - g| <= 1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..backends.base import Generation
from ..config.schema import DistillSampleConfig
from ..data.records import RATINGS, Example
from ..prompts import PromptBuilder, PromptOptions, parse_answer
from ..store import EXAMPLES, DataStore, RunStore
from .predict import generate_split, sample_rating, thinking_of
from .runs import write_run

FILTERS = ("none", "5-class", "binary", "1-off")
ResultHook = Callable[[int, Generation], None]


def passes(filter: str, teacher: int | None, gold: int) -> bool:
    """Whether a sample with teacher rating `teacher` is kept for gold rating `gold` (Section 4.3)."""
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
    if filter == "none":
        return True
    if teacher is None:
        return False
    if filter == "5-class":
        return teacher == gold
    if filter == "binary":
        return (teacher > 3) == (gold > 3)
    return abs(teacher - gold) <= 1


def run_distill_sample(cfg: DistillSampleConfig, out: Path, on_result: ResultHook | None = None,
                       on_start: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write TD/samples.jsonl, TD/examples.jsonl, TD/summary.json, TD/run.json; return the summary."""
    out = Path(out)
    run = generate_split(cfg.predict_config(), on_result, on_start)
    examples, dropped = run.examples, run.dropped

    # The examples as the teacher saw them: history trimmed by `build_requests` to fit its context.
    fitted = [_fitted(ex, dropped.get(ex.example_id, 0)) for ex in examples]
    by_id = {ex.example_id: ex for ex in fitted}
    rows = []
    for request, generation in zip(run.requests, run.generations):
        ex = by_id[request.tag]
        parsed = parse_answer(generation.text, "cot")
        rating, source = sample_rating(parsed, generation, force=True)
        rows.append({
            "example_id": ex.example_id, "sample": request.sample_index, "rating_true": ex.rating,
            "teacher_rating": rating, "rating_source": source, "reasoning": parsed.reasoning,
            "format_ok": parsed.format_ok, "raw": generation.text,
            "status": "ok" if generation.ok else "failed", "error": generation.error,
            "probs": list(generation.rating_probs) if generation.rating_probs is not None else None,
            **({"thinking": thinking} if (thinking := thinking_of(generation)) else {}),
        })
    store = RunStore(out)
    store.write_examples(fitted)
    store.write_samples(rows)
    summary = _sample_summary(rows, fitted)
    store.write_summary(summary)
    write_run(out, step="distill-sample", config={**asdict(cfg), "base_urls": list(cfg.base_urls)},
              data_file=DataStore(Path(cfg.data)).split_path(cfg.split), failures=run.failures,
              requests=len(run.requests), extra={
                  "model_id": run.model_id, "domain": examples[0].domain,
                  "ledger": run.ledger,
                  "history_items_dropped_to_fit": dropped,
              })
    return summary


def _failed(row: dict[str, Any]) -> bool:
    """A sample row whose teacher call failed (rows written before `status` existed: an error and no text)."""
    return row.get("status") == "failed" or (row.get("error") is not None and row.get("raw") is None)


def _fitted(example: Example, n_dropped: int) -> Example:
    return replace(example, history=example.history[n_dropped:]) if n_dropped else example


def _sample_summary(rows: list[dict[str, Any]], examples: list[Example]) -> dict[str, Any]:
    failed = sum(_failed(r) for r in rows)
    rows = [r for r in rows if not _failed(r)]  # a failed call is no sample: counted, never kept
    n = len(rows)
    rated = [r for r in rows if r["teacher_rating"] is not None]
    return {
        "examples": len(examples), "samples": n,
        "failed": failed,
        "format_ok_share": sum(r["format_ok"] for r in rows) / n if n else 0.0,
        "with_reasoning": sum(bool(r["reasoning"]) for r in rows),
        "rating_source": dict(Counter(r["rating_source"] or "none" for r in rows)),
        "teacher_exact_share": sum(r["teacher_rating"] == r["rating_true"] for r in rated) / n if n else 0.0,
        "kept_per_filter": {f: sum(passes(f, r["teacher_rating"], r["rating_true"]) for r in rows) for f in FILTERS},
    }


# ---- SFT rows -------------------------------------------------------------------------------------

def load_teacher(teacher: Path) -> tuple[dict[str, Example], list[dict[str, Any]]]:
    """The examples and sample rows of a TD folder, checked against each other."""
    store = RunStore(teacher)
    for path in (store.examples_path, store.samples_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (run `recsaver distill sample --out {store.folder}`)")
    examples = {ex.example_id: ex for ex in store.read_examples()}
    if not examples:
        raise ValueError(f"{store.examples_path}: no examples")
    rows = []
    for lineno, row in enumerate(store.read_samples(), 1):
        for key in ("example_id", "sample", "rating_true", "teacher_rating", "reasoning"):
            if key not in row:
                raise ValueError(f"{store.samples_path}:{lineno}: field {key!r} is missing")
        if row["example_id"] not in examples:
            raise ValueError(f"{store.samples_path}:{lineno}: field 'example_id' "
                             f"{row['example_id']!r} is not in {EXAMPLES}")
        rows.append(row)
    return examples, rows


def build_sft(teacher: Path, filter: str, out: Path, rating_only: bool = False) -> dict[str, Any]:
    """Write SFT/train.jsonl, SFT/stats.json, SFT/run.json from a TD folder; return the stats.

    Reasoning rows: each sample passing `filter` with a usable reasoning becomes one row whose
    target is that reasoning followed by the gold rating. Rating-only rows: one per example,
    direct prompt, target the gold rating; no teacher output is used, so only filter "none" is
    accepted there. The stats count kept samples per gold label for every filter, so filters
    can be compared before training.
    """
    if filter not in FILTERS:
        raise ValueError(f"--filter must be one of {FILTERS}, got {filter!r}")
    if rating_only and filter != "none":
        raise ValueError(f"--rating-only uses no teacher output, so --filter {filter!r} would do nothing; "
                         "use --filter none")
    teacher, out = Path(teacher), Path(out)
    examples, rows = load_teacher(teacher)
    domain = next(iter(examples.values())).domain
    builder = PromptBuilder(domain, PromptOptions(method="direct" if rating_only else "cot"))
    cot = PromptBuilder(domain, PromptOptions(method="cot"))

    dropped: Counter[str] = Counter()
    usable: list[dict[str, Any]] = []
    for row in rows:
        if _failed(row):
            dropped["failed_call"] += 1
            continue
        reasoning = (row["reasoning"] or "").strip()
        if not reasoning:
            dropped["no_reasoning"] += 1
            continue
        try:
            cot.answer_prefix(reasoning)  # the target must parse back: no rating header inside
        except ValueError:
            dropped["reasoning_with_rating_header"] += 1
            continue
        usable.append({**row, "reasoning": reasoning})

    per_filter = {f: _per_label(r["rating_true"] for r in usable if passes(f, r["teacher_rating"], r["rating_true"]))
                  for f in FILTERS}
    if rating_only:
        train = [{"example_id": ex.example_id, "sample": None, "rating_true": ex.rating, "teacher_rating": None,
                  **builder.training_row(ex, None, ex.rating)} for ex in examples.values()]
    else:
        train = [{"example_id": r["example_id"], "sample": r["sample"], "rating_true": r["rating_true"],
                  "teacher_rating": r["teacher_rating"],
                  **builder.training_row(examples[r["example_id"]], r["reasoning"], r["rating_true"])}
                 for r in usable if passes(filter, r["teacher_rating"], r["rating_true"])]
    if not train:
        raise ValueError(f"{teacher}: no sample passes filter {filter!r} with a usable reasoning "
                         f"({len(rows)} samples; dropped: {dict(dropped)})")
    store = RunStore(out)
    store.write_train_rows(train)
    stats = {
        "teacher": str(teacher), "filter": filter, "target": "rating-only" if rating_only else "reasoning",
        "method": "direct" if rating_only else "cot", "domain": domain, "rows": len(train),
        "examples": len(examples), "samples": len(rows),
        "dropped": dict(dropped), "rows_per_label": _per_label(r["rating_true"] for r in train),
        "kept_per_filter": per_filter,
    }
    store.write_stats(stats)
    write_run(out, step="distill-build", config={"teacher": str(teacher), "filter": filter,
                                                 "rating_only": rating_only},
              data_file=RunStore(teacher).samples_path, extra={"stats": stats})
    return stats


def _per_label(ratings: Any) -> dict[str, int]:
    counts = Counter(ratings)
    per = {str(k): counts.get(k, 0) for k in RATINGS}
    return {**per, "total": sum(per.values())}
