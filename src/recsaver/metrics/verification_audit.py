"""How well verification works, per mode: recall per gold label, precision through a negative control,
the verifier's confusion matrix, and the writer's faithfulness as a judge reads it (issue 18).

Rows are `references.jsonl` rows. A candidate explains the rating `target` (the gold one, or with
`negative` a wrong one, gold +-d, that must be rejected when verified against the gold rating). Only
candidates that were written and verified (status "ok") count; one whose scrubbed text is empty is a
rejection, as in Algorithm 1. Everything here is computed from stored values: no model is called.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from .verification import VerifyMode, accepts, answer, argmax_rating, calibrate, parse_mode

RATINGS = (1, 2, 3, 4, 5)
AUDIT_MODES = ("none", "exact", "1-off", "calibrated", "calibrated-1-off", "prob:0.25", "prob:0.5")


def target(candidate: dict[str, Any], gold: int) -> int:
    """The rating a candidate was written to explain (rows written before issue 18: the gold one)."""
    return int(candidate.get("target") or gold)


def verdict(mode: VerifyMode, candidate: dict[str, Any], gold: int, content_free: Sequence[float] | None
            ) -> bool | None:
    """Whether `candidate` joins the pool of `gold` under `mode`; None: no verdict (failed, or no probabilities)."""
    if candidate.get("status") == "failed":
        return None
    if not candidate.get("scrubbed_text"):
        return False
    return accepts(mode, gold, candidate.get("verify_rating"), candidate.get("verify_probs"), content_free)


def rebuild_row(row: dict[str, Any], mode: VerifyMode) -> dict[str, Any]:
    """`row` with `kept` and `references` recomputed under `mode` (negatives never join the pool)."""
    gold = int(row["rating"])
    cf = row.get("content_free_probs")
    candidates = []
    for c in row["candidates"]:
        v = verdict(mode, c, gold, cf)
        candidates.append({**c, "kept": bool(v), "verdict": None if v is None else bool(v)})
    refs = [c["scrubbed_text"] for c in candidates if c["kept"] and not c.get("negative")]
    return {**row, "verify": str(mode), "references": refs, "candidates": candidates}


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def mode_summary(rows: Sequence[dict[str, Any]], mode: VerifyMode) -> dict[str, Any]:
    """Recall per gold label, coverage, false accepts per distance and the 5x5 confusion matrix."""
    passed: Counter = Counter()
    judged: Counter = Counter()
    false_acc: Counter = Counter()
    negatives: Counter = Counter()
    no_verdict = covered = 0
    confusion = [[0] * 5 for _ in RATINGS]  # rows: the rating argued for; columns: the verifier's answer
    for row in rows:
        gold, cf = int(row["rating"]), row.get("content_free_probs")
        any_kept = False
        for c in row["candidates"]:
            v = verdict(mode, c, gold, cf)
            if v is None:
                no_verdict += int(c.get("status") != "failed")
                continue
            said = answer(mode, c.get("verify_rating"), c.get("verify_probs"), cf) if c.get("scrubbed_text") else None
            if said is not None:
                confusion[target(c, gold) - 1][said - 1] += 1
            if c.get("negative"):
                distance = str(abs(target(c, gold) - gold))
                negatives[distance] += 1
                false_acc[distance] += int(v)
            else:
                judged[gold] += 1
                passed[gold] += int(v)
                any_kept = any_kept or v
        covered += int(any_kept)
    n_neg, n_false = sum(negatives.values()), sum(false_acc.values())
    return {
        "mode": str(mode),
        "coverage": _rate(covered, len(rows)),
        "pass_rate_per_label": {str(r): _rate(passed[r], judged[r]) for r in RATINGS},
        "candidates_per_label": {str(r): judged[r] for r in RATINGS},
        "min_pass_rate": min((passed[r] / judged[r] for r in RATINGS if judged[r]), default=None),
        "negatives": n_neg,
        "false_accept_rate": _rate(n_false, n_neg),
        "false_accept_per_distance": {d: _rate(false_acc[d], negatives[d]) for d in sorted(negatives)},
        "no_verdict": no_verdict,
        "confusion": confusion,
    }


def faithfulness(rows: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """Per rating explained: how often the judge reads that very rating in the scrubbed explanation (argmax of
    its P(1..5)), within one of it, and the judge's mean expected rating. None when no candidate was judged.

    Where the rows hold the judge's content-free P(1..5) (`judge_content_free_probs`: the judge prompt with the
    explanation replaced by the placeholder), the same figures under contextual calibration are given as
    `calibrated`: a small judge has a prior of its own (Qwen2.5-1.5B reads "3" into an explanation that says
    the user strongly disliked the item), which calibration cancels as it does the verifier's."""
    rows = list(rows)
    raw = _faithfulness(rows, calibrated=False)
    if raw is None:
        return None
    if any(r.get("judge_content_free_probs") for r in rows):
        raw["calibrated"] = _faithfulness(rows, calibrated=True)
    return raw


def _faithfulness(rows: Sequence[dict[str, Any]], calibrated: bool) -> dict[str, Any] | None:
    hits: Counter = Counter()
    near: Counter = Counter()
    counts: Counter = Counter()
    expected: dict[int, float] = defaultdict(float)
    for row in rows:
        free = row.get("judge_content_free_probs") if calibrated else None
        if calibrated and not free:
            continue
        for c in row["candidates"]:
            probs = c.get("judge_probs")
            if probs is None:
                continue
            if free:  # only set when calibrated (rows without it were skipped above)
                probs = calibrate(probs, free)
            t = target(c, int(row["rating"]))
            said = argmax_rating(probs)
            counts[t] += 1
            hits[t] += int(said == t)
            near[t] += int(abs(said - t) <= 1)
            expected[t] += sum(p * r for p, r in zip(probs, RATINGS))
    if not counts:
        return None
    total = sum(counts.values())
    return {
        "judged": total,
        "agreement": sum(hits.values()) / total,
        "agreement_per_label": {str(r): _rate(hits[r], counts[r]) for r in RATINGS},
        "within_one_per_label": {str(r): _rate(near[r], counts[r]) for r in RATINGS},
        "mean_judged_rating_per_label": {str(r): (expected[r] / counts[r] if counts[r] else None) for r in RATINGS},
        "candidates_per_label": {str(r): counts[r] for r in RATINGS},
    }


def audit(rows: Sequence[dict[str, Any]], modes: Sequence[str] = AUDIT_MODES) -> dict[str, Any]:
    """Every mode's summary (those needing probabilities only when the rows have them) and faithfulness."""
    has_probs = any(c.get("verify_probs") is not None for r in rows for c in r["candidates"])
    has_cf = any(r.get("content_free_probs") is not None for r in rows)
    out: dict[str, Any] = {}
    for text in modes:
        mode = parse_mode(text)
        if (mode.needs_probs and not has_probs) or (mode.needs_content_free and not has_cf):
            continue
        out[str(mode)] = mode_summary(rows, mode)
    return {"modes": out, "faithfulness": faithfulness(rows)}
