"""`aggregate`: mean per metric with a seeded bootstrap CI, and Table 15's statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .registry import text_metrics
from .results import TextScores


def aggregate(
    scores: Sequence[TextScores],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    excluded: Sequence[str] | None = None,
) -> dict:
    """Mean per metric with a seeded percentile-bootstrap CI, and Table 15's statistics.

    ``{"n_scored", "n_excluded", "n_empty_candidates", "ci": {...},
    "metrics": {name: {"mean", "ci_low", "ci_high", "min", "max", "range", "std", "n"}}}``.
    The bootstrap resamples examples (the same resamples for every metric); ``std`` is the
    sample standard deviation (ddof=1; nan for fewer than 2 examples).  ``excluded``
    defaults to ``scores.excluded`` when ``scores`` is a :class:`TextScoreList`.
    """
    if excluded is None:
        excluded = getattr(scores, "excluded", [])
    names: list[str] = []
    for s in scores:
        for m in s.scores:
            if m not in names:
                names.append(m)
    order = text_metrics()
    names.sort(key=lambda m: (order.index(m) if m in order else len(order), m))
    n = len(scores)
    table = np.array([[s.scores.get(m, np.nan) for m in names] for s in scores], dtype=float).reshape(n, len(names))

    metrics: dict[str, dict] = {}
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    boot = np.full((0, len(names)), np.nan)
    if n > 0 and n_resamples > 0:
        rng = np.random.default_rng(seed)
        parts = []
        step = max(1, 2_000_000 // max(1, n * max(1, len(names))))
        done = 0
        while done < n_resamples:
            k = min(step, n_resamples - done)
            idx = rng.integers(0, n, size=(k, n))
            parts.append(table[idx].mean(axis=1))
            done += k
        boot = np.concatenate(parts, axis=0)
    for j, m in enumerate(names):
        col = table[:, j]
        if n == 0:
            nan = math.nan
            metrics[m] = {"mean": nan, "ci_low": nan, "ci_high": nan, "min": nan, "max": nan,
                          "range": nan, "std": nan, "n": 0}
            continue
        if len(boot):
            ci_low, ci_high = (float(v) for v in np.percentile(boot[:, j], [lo_q, hi_q]))
        else:
            ci_low = ci_high = math.nan
        metrics[m] = {
            "mean": float(col.mean()),
            "ci_low": ci_low,
            "ci_high": ci_high,
            "min": float(col.min()),
            "max": float(col.max()),
            "range": float(col.max() - col.min()),
            "std": float(col.std(ddof=1)) if n > 1 else math.nan,
            "n": n,
        }
    return {
        "n_scored": n,
        "n_excluded": len(excluded),
        "n_empty_candidates": sum(1 for s in scores if getattr(s, "empty_candidate", False)),
        "ci": {"method": "percentile bootstrap over examples", "level": level,
               "n_resamples": n_resamples, "seed": seed},
        "metrics": metrics,
    }
