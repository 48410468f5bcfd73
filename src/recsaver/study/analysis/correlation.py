"""Tables 7 and 9: human scores against NLG metrics (Pearson, Spearman, Kendall), verified vs unverified."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .bootstrap import AnalysisConfig, ci, resamples, to_float
from .loading import StudyData, item_means


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair (resamples x n); nan where a row is constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        r = (xc * yc).sum(axis=1) / np.sqrt((xc ** 2).sum(axis=1) * (yc ** 2).sum(axis=1))
    return r


def correlate(x: np.ndarray, y: np.ndarray, cfg: AnalysisConfig, salt: int) -> dict[str, Any]:
    """Pearson, Spearman and Kendall of x and y (pairs with a nan dropped), with bootstrap CIs."""
    from scipy.stats import kendalltau, pearsonr, rankdata, spearmanr

    ok = ~np.isnan(x) & ~np.isnan(y)
    x, y = x[ok], y[ok]
    n = len(x)
    res: dict[str, Any] = {"n": int(n)}
    if n < 3 or x.std() == 0 or y.std() == 0:
        for name in ("pearson", "spearman", "kendall"):
            res[name] = {"r": math.nan, "p_value": math.nan, "ci": [math.nan, math.nan]}
        return res
    idx = resamples(n, cfg, salt)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        boot_p = _rowwise_pearson(x[idx], y[idx])
        boot_s = _rowwise_pearson(rankdata(x[idx], axis=1), rankdata(y[idx], axis=1))
        boot_k = [kendalltau(x[i], y[i])[0] for i in idx]
        for name, fn, boot in (("pearson", pearsonr, boot_p), ("spearman", spearmanr, boot_s),
                               ("kendall", kendalltau, boot_k)):
            stat, p = fn(x, y)
            res[name] = {"r": to_float(stat), "p_value": to_float(p), "ci": ci(boot, cfg)}
    return res


def nlg_correlations(data: StudyData, scores: dict[str, np.ndarray], cfg: AnalysisConfig) -> dict[str, Any]:
    """Table 7."""
    out: dict[str, Any] = {}
    for d, dim in enumerate(("coherence", "insightfulness")):
        human = item_means(data, dim)
        out[dim] = {m: correlate(human, v, cfg, 300 + 10 * d + k) for k, (m, v) in enumerate(scores.items())}
    return out


def verification_effect(data: StudyData, verified: dict[str, np.ndarray], unverified: dict[str, np.ndarray],
                        cfg: AnalysisConfig) -> dict[str, Any]:
    """Table 9: coherence-Pearson with self-verified vs unverified references, on the same items."""
    human = item_means(data, "coherence")
    out: dict[str, Any] = {}
    for k, m in enumerate(x for x in verified if x in unverified):
        ok = ~np.isnan(human) & ~np.isnan(verified[m]) & ~np.isnan(unverified[m])
        h, v, u = human[ok], verified[m][ok], unverified[m][ok]
        entry: dict[str, Any] = {"n": int(ok.sum())}
        for name, s in (("verified", v), ("unverified", u)):
            c = correlate(h, s, cfg, 400 + k)
            entry[name] = c["pearson"]
        idx = resamples(len(h), cfg, 450 + k)
        with np.errstate(all="ignore"):
            diff = _rowwise_pearson(v[idx], h[idx]) - _rowwise_pearson(u[idx], h[idx]) if len(h) else []
        entry["difference"] = entry["verified"]["r"] - entry["unverified"]["r"]
        entry["difference_ci"] = ci(diff, cfg)
        out[m] = entry
    return out
