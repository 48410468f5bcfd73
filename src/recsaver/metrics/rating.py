"""Rating-prediction metrics (Tables 3 and 4 of "Leveraging LLM Reasoning Enhances
Personalized Recommender Systems", Tsai et al., 2024), each with a bootstrap CI.

Metrics (names as in `METRIC_NAMES`):

* ``binary_acc``, ``binary_f1``, ``binary_auc`` -- positive means rating > 3, for the
  truth and for the prediction alike (``POSITIVE_THRESHOLD``).  F1 is the F1 of the
  positive class; when it is undefined (no positive in truth nor prediction) it is 0.0
  (scikit-learn's ``zero_division=0.0``).
* ``multi_acc`` and ``multi_auc`` -- 5-class accuracy and macro one-vs-rest AUC over
  labels 1..5.
* ``mae`` and ``rmse`` -- on the integer ratings.

Unparseable predictions (``rating_pred is None``) are never dropped: they count as wrong,
with the worst possible answer ("worst-case" rule).  A None prediction is replaced by
the rating furthest from the truth on the other side of the threshold,
``5 if rating_true <= 3 else 1``: it is wrong in the binary and the 5-class task and has
the largest absolute error.  Its probabilities (whatever the record holds) are replaced
by a one-hot vector on that worst rating.  ``n_unparsed`` / ``unparsed_share`` report
how many predictions went through this rule.

Failed predictions (``status == "failed"``: the model call itself errored, e.g. a dead
server) are not answers, so they are not scored at all: they are left out and counted in
``n_failed``.  A run with failures is incomplete; its metrics describe the answered part.

Scores for the AUCs:

* A prediction with ``probs`` (P(1)..P(5)) uses them: the binary score is P(4)+P(5)
  and the 5-class score vector is the 5-vector renormalised to sum 1 (rows whose sum is
  already 1 within 1e-9 are left untouched, so equal probabilities stay exactly tied).
* A method that gives no probabilities at all (every parsed prediction has
  ``probs is None``) is scored by its ratings: binary AUC uses the predicted rating as
  the score and 5-class AUC a one-hot vector of the predicted rating.
* If some predictions have probabilities and others do not, those lacking them use a
  one-hot vector of the predicted rating (binary score 1 if the rating is > 3, else 0).

An AUC that is undefined is ``nan``, never an exception: binary AUC when the truth holds
a single class; 5-class AUC when the truth holds fewer than 2 classes.  When some of the
labels 1..5 are absent from the truth (but at least 2 are present), the 5-class AUC is
the macro mean of the one-vs-rest AUCs of the *present* labels only, each scored by its
own (un-renormalised) probability column -- what
``roc_auc_score(y, p, multi_class="ovr", average="macro", labels=[1..5])`` computes when
every label is present (scikit-learn then gives nan or raises instead).

Confidence intervals: a percentile bootstrap over examples (default 1000 resamples,
seed 0, 95%).  Resamples where a statistic is undefined (nan AUC) are skipped when the
percentiles are taken; if every resample is undefined the bounds are nan.  Point values
come from scikit-learn.  The resamples are evaluated column-wise in bulk, with
scikit-learn where it accepts many columns in one call (F1, MAE, RMSE) and numpy/scipy
for accuracy (mean of the correctness indicator) and the AUCs (the Mann-Whitney rank
identity, ties counted one half, in `recsaver.metrics.auc`): one scikit-learn AUC call
per resample costs milliseconds, which made 1000 resamples take tens of seconds.  The
test-suite pins every bulk statistic to the scikit-learn point value of each resample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import scipy
import sklearn
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    root_mean_squared_error,
)

from recsaver.data.records import RATINGS, Prediction
from recsaver.metrics.auc import binary_auc, multi_auc, rank_auc

METRIC_NAMES = ("binary_acc", "binary_f1", "binary_auc", "multi_acc", "multi_auc", "mae", "rmse")

HIGHER_IS_BETTER = {
    "binary_acc": True,
    "binary_f1": True,
    "binary_auc": True,
    "multi_acc": True,
    "multi_auc": True,
    "mae": False,
    "rmse": False,
}

POSITIVE_THRESHOLD = 3
UNPARSED_RULE = "worst-case"
_LABELS = np.asarray(RATINGS)
_N_CLASSES = len(RATINGS)
# Bootstrap resamples are drawn and evaluated in chunks of at most this many elements
# (resamples x examples) to bound memory; the chunking depends only on n.
_CHUNK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class MetricValue:
    name: str
    value: float
    ci_low: float
    ci_high: float
    higher_is_better: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "higher_is_better": self.higher_is_better,
        }


# --------------------------------------------------------------------------- inputs


def worst_rating(rating_true: int) -> int:
    """The substitute for an unparseable prediction: wrong on both tasks, max error."""
    return 5 if rating_true <= POSITIVE_THRESHOLD else 1


def _check_rating(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{what} must be an integer rating in 1..5, got {value!r}")
    if int(value) not in RATINGS:
        raise ValueError(f"{what} must be a rating in 1..5, got {value!r}")
    return int(value)


def _check_probs_matrix(probs: Any, n: int) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    if p.shape != (n, _N_CLASSES):
        raise ValueError(f"probs must have shape ({n}, {_N_CLASSES}), got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("probs must be finite and non-negative")
    sums = p.sum(axis=1)
    if np.any(sums <= 0):
        bad = int(np.flatnonzero(sums <= 0)[0])
        raise ValueError(f"probs row {bad} sums to 0; cannot renormalise")
    off = np.abs(sums - 1.0) > 1e-9
    if np.any(off):
        p = p.copy()
        p[off] /= sums[off, None]
    return p


def substitute(predictions: Sequence[Prediction]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """Apply the worst-case rule: (y_true, y_pred, probs or None, n_unparsed).

    ``probs`` is None when no parsed prediction carries probabilities (the AUCs are
    then scored by the predicted ratings); otherwise an (n, 5) matrix where rows
    lacking probabilities are one-hot on the (substituted) predicted rating.
    """
    predictions = list(predictions)
    if not predictions:
        raise ValueError("rating metrics need at least one prediction, got an empty list")
    n = len(predictions)
    y_true = np.empty(n, dtype=np.int64)
    y_pred = np.empty(n, dtype=np.int64)
    parsed = np.ones(n, dtype=bool)
    for i, p in enumerate(predictions):
        t = _check_rating(p.rating_true, f"prediction {i} ({p.example_id}): rating_true")
        y_true[i] = t
        if p.rating_pred is None:
            parsed[i] = False
            y_pred[i] = worst_rating(t)
        else:
            y_pred[i] = _check_rating(p.rating_pred, f"prediction {i} ({p.example_id}): rating_pred")
        if p.probs is not None and len(p.probs) != _N_CLASSES:
            raise ValueError(
                f"prediction {i} ({p.example_id}): probs must hold {_N_CLASSES} values P(1..5), "
                f"got {len(p.probs)}"
            )
    has_probs = any(p.probs is not None for p, ok in zip(predictions, parsed) if ok)
    probs = None
    if has_probs:
        probs = np.eye(_N_CLASSES)[y_pred - 1]  # one-hot fallback (and unparsed rows)
        for i, p in enumerate(predictions):
            if parsed[i] and p.probs is not None:
                probs[i] = np.asarray(p.probs, dtype=float)
        try:
            probs = _check_probs_matrix(probs, n)
        except ValueError as e:
            raise ValueError(f"invalid probs: {e}") from None
    return y_true, y_pred, probs, int((~parsed).sum())


def _check_arrays(y_true: Any, y_pred: Any, probs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    yt = np.asarray(y_true)
    yp = np.asarray(y_pred)
    if yt.ndim != 1 or yp.ndim != 1 or len(yt) != len(yp):
        raise ValueError(f"y_true and y_pred must be 1-D of equal length, got {yt.shape} and {yp.shape}")
    if len(yt) == 0:
        raise ValueError("rating metrics need at least one prediction, got an empty array")
    for name, a in (("y_true", yt), ("y_pred", yp)):
        if a.dtype.kind not in "iu" and not (a.dtype.kind == "f" and np.all(a == np.round(a))):
            raise ValueError(f"{name} must hold integer ratings in 1..5")
        if np.any((a < 1) | (a > 5)):
            raise ValueError(f"{name} must hold ratings in 1..5, got {sorted(set(a[(a < 1) | (a > 5)].tolist()))}")
    yt = yt.astype(np.int64)
    yp = yp.astype(np.int64)
    p = None if probs is None else _check_probs_matrix(probs, len(yt))
    return yt, yp, p


def _scores(y_pred: np.ndarray, probs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(binary score (n,), 5-class score matrix (n, 5))."""
    if probs is None:
        return y_pred.astype(float), np.eye(_N_CLASSES)[y_pred - 1]
    return probs[:, 3] + probs[:, 4], probs


# --------------------------------------------------------------------------- point values


def point_metrics(y_true: Any, y_pred: Any, probs: Any) -> dict[str, float]:
    """The 7 metrics on arrays already substituted (see `substitute`).

    ``y_pred`` holds integer ratings 1..5; ``probs`` is an (n, 5) array of P(1..5) or
    None (then the AUCs are scored by the predicted ratings).
    """
    yt, yp, p = _check_arrays(y_true, y_pred, probs)
    bscore, mscore = _scores(yp, p)
    pos_true = yt > POSITIVE_THRESHOLD
    pos_pred = yp > POSITIVE_THRESHOLD
    return {
        "binary_acc": float(accuracy_score(pos_true, pos_pred)),
        "binary_f1": float(f1_score(pos_true.astype(int), pos_pred.astype(int), zero_division=0.0)),
        "binary_auc": binary_auc(pos_true, bscore),
        "multi_acc": float(accuracy_score(yt, yp)),
        "multi_auc": multi_auc(yt, mscore),
        "mae": float(mean_absolute_error(yt, yp)),
        "rmse": float(root_mean_squared_error(yt, yp)),
    }


# --------------------------------------------------------------------------- bootstrap


def _resample_indices(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks (m, n) of example indices, drawn with replacement from one seeded stream."""
    # numpy's default_rng rather than scipy.stats.bootstrap: the latter cannot skip the
    # resamples where a statistic (an AUC) is undefined, which we must do.
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    done = 0
    while done < n_resamples:
        m = min(chunk, n_resamples - done)
        yield rng.integers(0, n, size=(m, n))
        done += m


def _columns(fn: Callable[..., Any], a: np.ndarray, b: np.ndarray, **kw: Any) -> np.ndarray:
    """Apply a column-wise sklearn metric to (m, n) row-resamples, one value per row.

    A single column would be read as a plain binary target, so pad to two and drop.
    """
    m = a.shape[0]
    if m == 1:
        a = np.vstack([a, a])
        b = np.vstack([b, b])
    return np.asarray(fn(a.T, b.T, **kw), dtype=float)[:m]


def _bootstrap_stats(
    y_true: np.ndarray, y_pred: np.ndarray, probs: np.ndarray | None, idx: np.ndarray
) -> dict[str, np.ndarray]:
    """Every metric on each resample (row of idx); equals point_metrics(y[row], ...)."""
    bscore, mscore = _scores(y_pred, probs)
    yt = y_true[idx]
    yp = y_pred[idx]
    pos_true = yt > POSITIVE_THRESHOLD
    pos_pred = yp > POSITIVE_THRESHOLD
    out = {
        "binary_acc": (pos_true == pos_pred).mean(axis=1),
        "binary_f1": _columns(
            f1_score, pos_true.astype(int), pos_pred.astype(int), average=None, zero_division=0.0
        ),
        "binary_auc": rank_auc(pos_true, bscore[idx]),
        "multi_acc": (yt == yp).mean(axis=1),
        "mae": _columns(mean_absolute_error, yt, yp, multioutput="raw_values"),
        "rmse": _columns(root_mean_squared_error, yt, yp, multioutput="raw_values"),
    }
    per_class = np.stack([rank_auc(yt == c, mscore[idx, c - 1]) for c in RATINGS], axis=1)
    n_present = np.stack([(yt == c).any(axis=1) for c in RATINGS], axis=1).sum(axis=1)
    multi = np.full(len(idx), np.nan)
    ok = n_present >= 2  # then every present class has both positives and negatives
    multi[ok] = np.nanmean(per_class[ok], axis=1)
    out["multi_auc"] = multi
    return out


def _percentile_ci(values: np.ndarray, ci: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.percentile(values, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(lo), float(hi)


def bootstrap_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    probs: np.ndarray | None,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CI of every metric; nan statistics are skipped."""
    n = len(y_true)
    if n_resamples == 0:
        return {name: (float("nan"), float("nan")) for name in METRIC_NAMES}
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in METRIC_NAMES}
    for idx in _resample_indices(n, n_resamples, seed):
        for name, vals in _bootstrap_stats(y_true, y_pred, probs, idx).items():
            chunks[name].append(vals)
    return {name: _percentile_ci(np.concatenate(chunks[name]), ci) for name in METRIC_NAMES}


# --------------------------------------------------------------------------- public entry


def rating_metrics(
    predictions: Sequence[Prediction],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> dict[str, Any]:
    """All rating metrics of one method's predictions, with bootstrap CIs.

    Returns ``{"n", "n_unparsed", "unparsed_share", "metrics": {name: MetricValue dict},
    "config": {...}}``.  Raises ValueError on an empty list or a rating outside 1..5.
    """
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, Integral) or n_resamples < 0:
        raise ValueError(f"n_resamples must be a non-negative integer, got {n_resamples!r}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    predictions = list(predictions)
    answered = [p for p in predictions if not p.failed]
    n_failed = len(predictions) - len(answered)
    if predictions and not answered:
        raise ValueError(f"all {n_failed} predictions failed (their model calls errored): there is nothing to "
                         "score; see each prediction's 'error' and rerun once the engine works")
    y_true, y_pred, probs, n_unparsed = substitute(answered)
    n = len(y_true)
    points = point_metrics(y_true, y_pred, probs)
    cis = bootstrap_ci(y_true, y_pred, probs, n_resamples=int(n_resamples), seed=seed, ci=ci)
    metrics = {
        name: MetricValue(
            name=name,
            value=points[name],
            ci_low=cis[name][0],
            ci_high=cis[name][1],
            higher_is_better=HIGHER_IS_BETTER[name],
        ).to_dict()
        for name in METRIC_NAMES
    }
    return {
        "n": n,
        "n_unparsed": n_unparsed,
        "unparsed_share": n_unparsed / n,
        "n_failed": n_failed,
        "metrics": metrics,
        "config": {
            "sklearn_version": sklearn.__version__,
            "numpy_version": np.__version__,
            "scipy_version": scipy.__version__,
            "n_resamples": int(n_resamples),
            "seed": seed,
            "ci": ci,
            "ci_method": "percentile",
            "positive_threshold": POSITIVE_THRESHOLD,
            "unparsed_rule": UNPARSED_RULE,
            "auc_scores": "rating" if probs is None else "probs",
        },
    }
