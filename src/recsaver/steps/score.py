"""Score a run's reasoning against Rec-SAVER reference pools (paper Section 5; Tables 3, 11, 15).

Re-scoring never calls a model: it reads RUN/predictions.jsonl and
REFS/references.jsonl and writes RUN/text_scores.jsonl and RUN/text_metrics.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config.schema import ScoreOptions
from ..data.records import load_predictions
from ..metrics.text import TextScorer, aggregate
from ..store import RunStore, load_references, predictions_file, references_file


class EmptyPoolsError(ValueError):
    """No example that needs a reference has one: there is nothing to score against (exit 2, with advice)."""


def empty_pools_advice(refs: Path) -> str:
    """Why the pools of REFS are empty (per-label verification pass rates) and what to do about it."""
    store = RunStore(refs if refs.is_dir() else refs.parent)
    summary = store.read_summary() or {}
    rates = summary.get("pass_rate_per_label") or {}
    shown = ", ".join(f"{k}: {'-' if v is None else f'{v:.0%}'}" for k, v in rates.items()) or "unknown"
    verify = summary.get("verify", "?")
    failed = summary.get("failed_candidates") or 0
    run = store.read_run()
    config = {} if run is None else (run.get("config") or {})
    model = config.get("verifier_model") or config.get("model", "")
    hint = (f"{failed} candidate(s) failed (their calls errored): rerun `recsaver references` to retry them. "
            if failed else "")
    return (f"verification (--verify {verify}{', verifier ' + model if model else ''}) kept no explanation; "
            f"pass rate per gold label: {shown}. {hint}Compare the verify modes with `recsaver references audit "
            f"{store.folder}` and rebuild the pools without a model call (`recsaver references rebuild "
            f"{store.folder} --verify 1-off --out NEW`; also calibrated, prob:TAU or none), or use a stronger "
            "verifier (--verifier-model llamacpp/qwen2.5-1.5b); small models rarely recover the exact rating.")


def run_score(run: Path, refs: Path, metrics: Sequence[str] | None = None, out: Path | None = None,
              n_resamples: int | None = None, seed: int | None = None, scorer: TextScorer | None = None
              ) -> dict[str, Any]:
    """Per-example scores and aggregates, overall and split by rating correctness (Table 11); resamples and
    seed default to ScoreOptions'."""
    defaults = ScoreOptions()
    n_resamples = defaults.resamples if n_resamples is None else n_resamples
    seed = defaults.seed if seed is None else seed
    run = Path(run)
    predictions = load_predictions(predictions_file(run))
    pools = load_references(Path(refs))
    out = Path(out) if out else (run if run.is_dir() else run.parent)
    in_pool = [p for p in predictions if p.example_id in pools]
    if not any(pools[p.example_id] for p in in_pool):
        where = references_file(Path(refs))
        raise EmptyPoolsError(f"{where}: every reference pool of the {len(in_pool)} predicted examples is empty, "
                              f"so there is nothing to score against: " + empty_pools_advice(Path(refs)))
    scorer = scorer or TextScorer(metrics)
    scores = scorer.score([(p.example_id, p.reasoning) for p in in_pool], pools)
    correct = {p.example_id: p.rating_pred == p.rating_true for p in in_pool}
    store = RunStore(out)
    store.write_text_scores(
        {"example_id": s.example_id, "n_refs": s.n_refs, "correct": correct[s.example_id], **s.scores}
        for s in scores)
    by_correct = {
        label: aggregate([s for s in scores if correct[s.example_id] == flag], n_resamples=n_resamples, seed=seed,
                         excluded=[])
        for label, flag in (("correct", True), ("incorrect", False))
    }
    result = {
        "overall": aggregate(scores, n_resamples=n_resamples, seed=seed),
        "by_correctness": by_correct,
        "predictions": len(predictions),
        "predictions_without_reference_entry": len(predictions) - len(in_pool),
        "excluded_empty_pool": list(scores.excluded),
        "signature": scorer.signature(),
    }
    store.write_text_metrics(result)
    return result
