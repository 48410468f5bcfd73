"""Table 6: rater agreement per dimension (mean answer, pairwise quadratic kappa and Pearson r)."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .bootstrap import AnalysisConfig, boot_ci, ci, resamples
from .loading import DIMENSIONS, LIKERT, StudyData


def _pairwise(m: np.ndarray, labels: Sequence[int],
              rows: np.ndarray) -> list[tuple[int, int, int, float, float, float]]:
    """(a, b, n, kappa, r, p) for every rater pair with 2+ shared items among `rows`."""
    from scipy.stats import pearsonr
    from sklearn.metrics import cohen_kappa_score

    out = []
    sub = m[rows]
    for a, b in itertools.combinations(range(m.shape[1]), 2):
        both = ~np.isnan(sub[:, a]) & ~np.isnan(sub[:, b])
        x, y = sub[both, a], sub[both, b]
        if len(x) < 2:
            continue
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            kappa = float(cohen_kappa_score(x.astype(int), y.astype(int), weights="quadratic", labels=list(labels)))
            r, p = (math.nan, math.nan) if x.std() == 0 or y.std() == 0 else map(float, pearsonr(x, y))
        out.append((a, b, len(x), kappa, r, p))
    return out


def _pairwise_boot(m: np.ndarray, labels: Sequence[int], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average pairwise quadratic kappa and Pearson r on every resample (row of idx), vectorised.

    Hand-written because sklearn's cohen_kappa_score costs milliseconds a call (input checks),
    times resamples x pairs x dimensions; tests pin it to sklearn on the full sample.
    """
    k = len(labels)
    lab = {v: j for j, v in enumerate(labels)}
    w = np.array([[(i - j) ** 2 for j in range(k)] for i in range(k)], dtype=float)
    kappas, rs = [], []
    for a, b in itertools.combinations(range(m.shape[1]), 2):
        x, y = m[idx, a], m[idx, b]
        both = ~np.isnan(x) & ~np.isnan(y)
        if not both.any():
            continue
        xi = np.where(both, np.vectorize(lambda v: lab.get(v, 0))(np.nan_to_num(x)), 0)
        yi = np.where(both, np.vectorize(lambda v: lab.get(v, 0))(np.nan_to_num(y)), 0)
        rows = np.repeat(np.arange(len(idx)), idx.shape[1])
        flat = (rows * k * k + xi.ravel() * k + yi.ravel())[both.ravel()]
        obs = np.bincount(flat, minlength=len(idx) * k * k).reshape(len(idx), k, k)
        n = obs.sum(axis=(1, 2))
        with np.errstate(all="ignore"):
            exp = obs.sum(axis=2)[:, :, None] * obs.sum(axis=1)[:, None, :] / n[:, None, None]
            kappas.append(1 - (obs * w).sum(axis=(1, 2)) / (exp * w).sum(axis=(1, 2)))
            wt = both.astype(float)
            xs, ys = np.where(both, x, 0.0), np.where(both, y, 0.0)
            mx, my = (xs * wt).sum(1) / n, (ys * wt).sum(1) / n
            dx, dy = (xs - mx[:, None]) * wt, (ys - my[:, None]) * wt
            r = (dx * dy).sum(1) / np.sqrt((dx ** 2).sum(1) * (dy ** 2).sum(1))
        r[n < 2] = np.nan
        kappas[-1][n < 2] = np.nan
        rs.append(r)
    if not kappas:
        return np.full(len(idx), np.nan), np.full(len(idx), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(kappas), axis=0), np.nanmean(np.stack(rs), axis=0)


def _mean_of(values: list[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def _r_pvalue(r: float, n: float) -> float:
    from scipy.stats import t

    if math.isnan(r) or n <= 2:
        return math.nan
    if abs(r) >= 1:
        return 0.0
    stat = r * math.sqrt((n - 2) / (1 - r * r))
    return float(2 * t.sf(abs(stat), n - 2))


def agreement(data: StudyData, cfg: AnalysisConfig) -> dict[str, Any]:
    """Table 6."""
    out: dict[str, Any] = {}
    n_items = len(data.item_ids)
    for salt, dim in enumerate(DIMENSIONS):
        m = data.scores[dim]
        labels = (0, 1) if dim == "faithfulness" else LIKERT
        all_rows = np.arange(n_items)
        pairs = _pairwise(m, labels, all_rows)
        kappa = _mean_of([p[3] for p in pairs])
        r = _mean_of([p[4] for p in pairs])
        overlap = float(np.mean([p[2] for p in pairs])) if pairs else 0.0
        answers = m[~np.isnan(m)]

        def boot_mean(idx: np.ndarray, m: np.ndarray = m) -> float:
            v = m[idx]
            return float(np.nanmean(v)) if np.any(~np.isnan(v)) else math.nan

        kappa_ci, r_ci = _pairwise_boot(m, labels, resamples(n_items, cfg, 100 + salt))
        out[dim] = {
            "mean": float(answers.mean()) if len(answers) else math.nan,
            "mean_ci": boot_ci(boot_mean, n_items, cfg, 200 + salt),
            "kappa": kappa, "kappa_ci": ci(kappa_ci, cfg),
            "pearson": r, "pearson_ci": ci(r_ci, cfg), "p_value": _r_pvalue(r, overlap),
            "n_answers": int(len(answers)), "n_pairs": len(pairs), "mean_shared_items": overlap,
            "pairs": [{"raters": [data.raters[a], data.raters[b]], "n": n, "kappa": k, "pearson": rr, "p_value": p}
                      for a, b, n, k, rr, p in pairs],
        }
    return out
