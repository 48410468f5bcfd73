"""Calibration of P(1..5): reliability curves and expected calibration error (ECE).

Two views of one prediction's rating distribution:

* binary: confidence P(rating > 3) = P(4) + P(5) against the event "gold rating > 3";
* top-label (5-class): confidence max_k P(k) against "argmax rating == gold rating".

Bins are equal-width on [0, 1] (a confidence of exactly 1 falls in the last bin).
ECE = sum over bins of (bin count / n) * |accuracy in bin - mean confidence in bin|
(Guo et al. 2017).  It is written out here because scikit-learn has no ECE; its
``calibration_curve`` drops empty bins and reports no counts, which ECE needs.
Predictions without probabilities are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from recsaver.data.records import Prediction
from recsaver.metrics.rating import POSITIVE_THRESHOLD


def reliability(confidence: ArrayLike, outcome: ArrayLike, n_bins: int = 10) -> dict[str, Any]:
    """Per-bin counts, mean confidence and accuracy, and the ECE."""
    conf = np.asarray(confidence, dtype=float)
    hit = np.asarray(outcome, dtype=float)
    if conf.shape != hit.shape or conf.ndim != 1:
        raise ValueError("confidence and outcome must be 1-D of equal length")
    if len(conf) and (conf.min() < -1e-9 or conf.max() > 1 + 1e-9):
        raise ValueError("confidences must lie in [0, 1]")
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    index = np.minimum((np.clip(conf, 0, 1) * n_bins).astype(int), n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        mask = index == b
        count = int(mask.sum())
        mean_conf = float(conf[mask].mean()) if count else float("nan")
        accuracy = float(hit[mask].mean()) if count else float("nan")
        if count:
            ece += count / len(conf) * abs(accuracy - mean_conf)
        bins.append({"lower": b / n_bins, "upper": (b + 1) / n_bins, "count": count,
                     "confidence": mean_conf, "accuracy": accuracy})
    return {"n": int(len(conf)), "ece": float(ece) if len(conf) else float("nan"), "bins": bins}


def _normalised(probs: Sequence[float]) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    total = p.sum()
    if len(p) != 5 or not np.all(np.isfinite(p)) or total <= 0:
        raise ValueError(f"P(1..5) must be 5 finite values with a positive sum, got {list(probs)}")
    return p / total


def calibration(predictions: Sequence[Prediction], n_bins: int = 10) -> dict[str, Any]:
    """Binary and top-label reliability of the predictions that carry P(1..5)."""
    with_probs = [(p.rating_true, p.probs) for p in predictions if p.probs is not None]
    probs = np.array([_normalised(dist) for _, dist in with_probs]).reshape(len(with_probs), 5)
    gold = np.array([rating for rating, _ in with_probs], dtype=int)
    binary = reliability(probs[:, 3] + probs[:, 4], gold > POSITIVE_THRESHOLD, n_bins)
    top = reliability(probs.max(axis=1) if len(probs) else np.array([]),
                      (probs.argmax(axis=1) + 1 == gold) if len(probs) else np.array([], dtype=bool), n_bins)
    return {"n_with_probs": len(with_probs), "n_without_probs": len(predictions) - len(with_probs),
            "n_bins": n_bins, "binary": binary, "top_label": top}
