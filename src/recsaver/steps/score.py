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
    run = Path(run)
    predictions = load_predictions(predictions_file(run))
    pools = load_references(Path(refs))
    out = Path(out) if out else (run if run.is_dir() else run.parent)
    in_pool = [p for p in predictions if p.example_id in pools]
    result = _score([(p.example_id, p.reasoning) for p in in_pool],
                    {p.example_id: p.rating_pred == p.rating_true for p in in_pool}, pools, Path(refs), metrics, out,
                    n_resamples, seed, scorer)
    result = {"overall": result["overall"], "by_correctness": result["by_correctness"],
              "predictions": len(predictions), "predictions_without_reference_entry": len(predictions) - len(in_pool),
              "excluded_empty_pool": result["excluded_empty_pool"], "signature": result["signature"]}
    RunStore(out).write_text_metrics(result)
    return result


def score_outputs(outputs: Path, refs: Path, id_field: str = "example_id", text_field: str = "text",
                  rating_field: str | None = None, metrics: Sequence[str] | None = None, out: Path | None = None,
                  n_resamples: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """Score explanations written by any system (steps/external.py) against the pools of REFS. Outputs whose id
    has no entry in REFS are counted and listed, never dropped silently; with `rating_field` the scores are also
    split by whether that rating equals the gold one."""
    from ..data.records import read_jsonl
    from .external import load_outputs

    items = load_outputs(Path(outputs), id_field, text_field, rating_field)
    rows = list(read_jsonl(references_file(Path(refs))))
    pools = {r["example_id"]: list(r["references"]) for r in rows}
    gold = {r["example_id"]: int(r["rating"]) for r in rows}
    known = [o for o in items if o.example_id in pools]
    unknown = [o.example_id for o in items if o.example_id not in pools]
    correct = ({o.example_id: o.rating == gold[o.example_id] for o in known if o.rating is not None}
               if rating_field else None)
    out = Path(out) if out else Path(outputs).parent
    # The scored text (and rating, thinking) go into text_scores.jsonl too, so `recsaver view` can show what the
    # other system wrote beside its scores.
    shown = {o.example_id: {"text": o.text, **({"rating": o.rating} if rating_field else {}),
                            **({"thinking": o.thinking} if o.thinking is not None else {})} for o in known}
    result = _score([(o.example_id, o.text) for o in known], correct, pools, Path(refs), metrics, out, n_resamples,
                    seed, None, shown)
    result.update(outputs=str(outputs), outputs_read=len(items), outputs_without_reference_entry=len(unknown),
                  ids_without_reference_entry=unknown[:50],
                  outputs_with_thinking=sum(o.thinking is not None for o in items),
                  fields={"id": id_field, "text": text_field, "rating": rating_field})
    RunStore(out).write_text_metrics(result)
    return result


def _score(items: list[tuple[str, str | None]], correct: dict[str, bool] | None, pools: dict[str, list[str]],
           refs: Path, metrics: Sequence[str] | None, out: Path, n_resamples: int | None, seed: int | None,
           scorer: TextScorer | None, shown: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Score (id, text) pairs against `pools`; write OUT/text_scores.jsonl; return the aggregates (by
    correctness when `correct` is given: per id, whether its rating was right)."""
    defaults = ScoreOptions()
    n_resamples = defaults.resamples if n_resamples is None else n_resamples
    seed = defaults.seed if seed is None else seed
    if not any(pools[i] for i, _ in items):
        where = references_file(refs)
        raise EmptyPoolsError(f"{where}: every reference pool of the {len(items)} examples to score is empty, "
                              f"so there is nothing to score against: " + empty_pools_advice(refs))
    scorer = scorer or TextScorer(metrics)
    scores = scorer.score(items, pools)
    RunStore(out).write_text_scores(
        {"example_id": s.example_id, "n_refs": s.n_refs,
         **({"correct": correct.get(s.example_id)} if correct is not None else {}), **s.scores,
         **(shown or {}).get(s.example_id, {})}
        for s in scores)
    result: dict[str, Any] = {"overall": aggregate(scores, n_resamples=n_resamples, seed=seed)}
    if correct is not None:
        result["by_correctness"] = {
            label: aggregate([s for s in scores if correct.get(s.example_id) is flag], n_resamples=n_resamples,
                             seed=seed, excluded=[])
            for label, flag in (("correct", True), ("incorrect", False))}
    result.update(excluded_empty_pool=list(scores.excluded), signature=scorer.signature(), references=str(refs))
    return result
