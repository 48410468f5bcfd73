"""AUCs of the rating metrics: point values with scikit-learn, and row-wise AUCs for the bootstrap.

* `binary_auc` / `multi_auc` -- the point values (`recsaver.metrics.rating.point_metrics`):
  nan, never an exception, when undefined; the 5-class AUC is the macro one-vs-rest mean over
  the labels present in the truth.
* `rank_auc` -- the AUC of every row of (m, n) resamples at once via the Mann-Whitney rank
  identity (ties count one half), which equals scikit-learn's trapezoidal ROC AUC; one
  scikit-learn call per resample costs milliseconds, this costs one `rankdata` call.
"""

from __future__ import annotations

import numpy as np
import scipy.stats
from sklearn.metrics import roc_auc_score

from recsaver.data.records import RATINGS

_N_CLASSES = len(RATINGS)


def binary_auc(pos: np.ndarray, score: np.ndarray) -> float:
    if pos.all() or not pos.any():
        return float("nan")
    return float(roc_auc_score(pos.astype(int), score))


def multi_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    if len(present) == _N_CLASSES:
        return float(
            roc_auc_score(y_true, score, multi_class="ovr", average="macro", labels=list(RATINGS))
        )
    # Present labels only: macro mean of the one-vs-rest AUCs, same as sklearn's "ovr".
    indicator = (y_true[:, None] == present[None, :]).astype(int)
    return float(roc_auc_score(indicator, score[:, present - 1], average="macro"))


def rank_auc(pos: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Row-wise AUC of score vs pos (both (m, n)); nan where a row holds one class.

    Mann-Whitney: AUC = (sum of the positives' average ranks - n1(n1+1)/2) / (n1 n0),
    which equals the trapezoidal ROC AUC of roc_auc_score (ties count one half).
    """
    ranks = scipy.stats.rankdata(score, method="average", axis=1)
    n = pos.shape[1]
    n1 = pos.sum(axis=1).astype(float)
    n0 = n - n1
    rank_sum = (ranks * pos).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0)
    auc[(n1 == 0) | (n0 == 0)] = np.nan
    return auc
