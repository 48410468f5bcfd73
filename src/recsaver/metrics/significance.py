"""Paired significance between two methods scored on the same examples (paper Tables 3-5).

* Paired bootstrap for every rating metric: both methods are evaluated on the *same*
  resampled example indices, so the test sees the per-example pairing; the p-value is
  two-sided with the shifted null of Berg-Kirkpatrick et al. (2012): the share of
  resamples whose delta lies at least |delta| away from the observed delta.  Resamples
  where a metric is undefined for either method (an AUC on one class) are skipped.
* McNemar for binary and 5-class accuracy, on the discordant pairs.  statsmodels (whose
  ``mcnemar`` is the usual call) is not a dependency; its exact test is the two-sided
  binomial test of min(n01, n10) out of n01 + n10 at p = 0.5, which
  ``scipy.stats.binomtest`` computes exactly.  The chi-square with continuity
  correction is reported too; the exact test is the one used for markers because our
  samples have few discordant pairs, where the chi-square approximation is poor.

Predictions are matched by ``example_id``; unparsed predictions follow the rating
metrics' worst-case rule (`recsaver.metrics.rating.substitute`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.stats

from recsaver.data.records import Prediction
from recsaver.metrics.rating import (
    HIGHER_IS_BETTER,
    METRIC_NAMES,
    POSITIVE_THRESHOLD,
    _bootstrap_stats,
    _resample_indices,
    point_metrics,
    substitute,
)

ACCURACY_METRICS = ("binary_acc", "multi_acc")
# Below this many shared examples the bootstrap has almost no distinct resamples (with one example
# every resample is that example, and p would be 0): its p-values are reported as nan.
MIN_BOOTSTRAP_PAIRS = 10


def pair_predictions(a: Sequence[Prediction], b: Sequence[Prediction]) -> tuple[list[Prediction], list[Prediction]]:
    """The predictions of both methods on the examples they share, in the same order.

    An example whose call failed in either run is no pair: it is left out of both sides.
    """
    by_id = {p.example_id: p for p in b}
    left, right = [], []
    for p in a:
        q = by_id.get(p.example_id)
        if q is None or p.failed or q.failed:
            continue
        if q.rating_true != p.rating_true:
            raise ValueError(f"example {p.example_id}: gold rating {p.rating_true} in one run, {q.rating_true} "
                             "in the other; the runs are on different data")
        left.append(p)
        right.append(q)
    if not left:
        raise ValueError("the two runs share no example_id; a paired test needs the same examples")
    return left, right


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict[str, Any]:
    """Exact (binomial) and chi-square (continuity-corrected) McNemar on paired correctness."""
    ca = np.asarray(correct_a, dtype=bool)
    cb = np.asarray(correct_b, dtype=bool)
    n01 = int((ca & ~cb).sum())  # a right, b wrong
    n10 = int((~ca & cb).sum())  # a wrong, b right
    discordant = n01 + n10
    if discordant == 0:
        return {"n01": 0, "n10": 0, "p_value": 1.0, "p_value_chi2": 1.0, "statistic_chi2": 0.0, "method": "exact"}
    exact = scipy.stats.binomtest(min(n01, n10), discordant, 0.5, alternative="two-sided").pvalue
    stat = (abs(n01 - n10) - 1) ** 2 / discordant
    return {"n01": n01, "n10": n10, "p_value": float(min(1.0, exact)),
            "p_value_chi2": float(scipy.stats.chi2.sf(stat, 1)), "statistic_chi2": float(stat), "method": "exact"}


def paired_bootstrap(a: Sequence[Prediction], b: Sequence[Prediction], *, n_resamples: int = 1000,
                     seed: int = 0, ci: float = 0.95) -> dict[str, dict[str, float]]:
    """Per metric: delta = metric(b) - metric(a), its percentile CI and a two-sided p-value."""
    a, b = pair_predictions(a, b)
    ya, pa, proba, _ = substitute(a)
    yb, pb, probb, _ = substitute(b)
    point_a, point_b = point_metrics(ya, pa, proba), point_metrics(yb, pb, probb)
    deltas: dict[str, list[np.ndarray]] = {m: [] for m in METRIC_NAMES}
    for idx in _resample_indices(len(ya), n_resamples, seed):
        sa = _bootstrap_stats(ya, pa, proba, idx)
        sb = _bootstrap_stats(yb, pb, probb, idx)
        for m in METRIC_NAMES:
            deltas[m].append(sb[m] - sa[m])
    alpha = (1.0 - ci) / 2.0
    out: dict[str, dict[str, float]] = {}
    for m in METRIC_NAMES:
        observed = point_b[m] - point_a[m]
        d = np.concatenate(deltas[m]) if deltas[m] else np.array([])
        d = d[~np.isnan(d)]
        if np.isnan(observed) or len(d) == 0:
            out[m] = {"a": point_a[m], "b": point_b[m], "delta": float("nan"), "ci_low": float("nan"),
                      "ci_high": float("nan"), "p_value": float("nan"), "n_resamples": int(len(d))}
            continue
        lo, hi = np.percentile(d, [100 * alpha, 100 * (1 - alpha)])
        p = 1.0 if observed == 0 else float(np.mean(np.abs(d - observed) >= abs(observed) - 1e-12))
        if len(ya) < MIN_BOOTSTRAP_PAIRS:
            p = float("nan")
        out[m] = {"a": point_a[m], "b": point_b[m], "delta": float(observed), "ci_low": float(lo),
                  "ci_high": float(hi), "p_value": p, "n_resamples": int(len(d)),
                  "b_better": bool(observed > 0) == HIGHER_IS_BETTER[m] if observed != 0 else False}
    return out


def compare(a: Sequence[Prediction], b: Sequence[Prediction], *, n_resamples: int = 1000, seed: int = 0,
            ci: float = 0.95) -> dict[str, Any]:
    """Everything the tables show for "b against reference a": bootstrap for all metrics, McNemar for accuracy.

    ``p_values[m]`` is the p-value a table marks: McNemar (exact) for the accuracies,
    the paired bootstrap for every other metric.
    """
    pa, pb = pair_predictions(a, b)
    ya, ra, _, _ = substitute(pa)
    _, rb, _, _ = substitute(pb)
    boot = paired_bootstrap(pa, pb, n_resamples=n_resamples, seed=seed, ci=ci)
    tests = {
        "binary_acc": mcnemar((ra > POSITIVE_THRESHOLD) == (ya > POSITIVE_THRESHOLD),
                              (rb > POSITIVE_THRESHOLD) == (ya > POSITIVE_THRESHOLD)),
        "multi_acc": mcnemar(ra == ya, rb == ya),
    }
    p_values = {m: (tests[m]["p_value"] if m in tests else boot[m]["p_value"]) for m in METRIC_NAMES}
    return {"n": len(pa), "bootstrap": boot, "mcnemar": tests, "p_values": p_values,
            "config": {"n_resamples": n_resamples, "seed": seed, "ci": ci,
                       "bootstrap": "paired, percentile CI, shifted-null two-sided p",
                       "mcnemar": "exact binomial on discordant pairs (scipy.stats.binomtest)"}}


def marker(p_value: float | None, alpha: float = 0.05) -> str:
    """'**' for p < alpha/5, '*' for p < alpha, '' otherwise (and for nan)."""
    if p_value is None or not np.isfinite(p_value):
        return ""
    if p_value < alpha / 5:
        return "**"
    return "*" if p_value < alpha else ""
