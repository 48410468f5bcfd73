"""Tables 8 and 13: items split by majority faithfulness, and by a right or wrong predicted rating."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..answers import ERROR_KEYS
from .bootstrap import AnalysisConfig, ci, resamples, to_float
from .loading import DIMENSIONS, StudyData, item_means


def faithful_items(data: StudyData) -> np.ndarray:
    """1.0 faithful, 0.0 unfaithful by majority of raters; nan for ties and unrated items."""
    share = item_means(data, "faithfulness")
    out = np.where(share > 0.5, 1.0, np.where(share < 0.5, 0.0, np.nan))
    out[np.isnan(share)] = np.nan
    return out


def faithfulness_tests(data: StudyData, scores: dict[str, np.ndarray], cfg: AnalysisConfig) -> dict[str, Any]:
    """Table 8: Welch's t-test of each score between faithful and unfaithful items."""
    from scipy.stats import ttest_ind

    label = faithful_items(data)
    values = {"coherence": item_means(data, "coherence"), "insightfulness": item_means(data, "insightfulness"),
              **scores}
    rows: dict[str, Any] = {}
    for k, (name, v) in enumerate(values.items()):
        a = v[(label == 1) & ~np.isnan(v)]
        b = v[(label == 0) & ~np.isnan(v)]
        entry: dict[str, Any] = {"faithful_mean": to_float(a.mean()) if len(a) else math.nan,
                                 "unfaithful_mean": to_float(b.mean()) if len(b) else math.nan,
                                 "n_faithful": int(len(a)), "n_unfaithful": int(len(b))}
        if len(a) >= 2 and len(b) >= 2 and (a.std() > 0 or b.std() > 0):
            t, p = ttest_ind(a, b, equal_var=False)
            entry.update(t=to_float(t), p_value=to_float(p))
        else:
            entry.update(t=math.nan, p_value=math.nan)
        if len(a) and len(b):
            ia, ib = resamples(len(a), cfg, 500 + k), resamples(len(b), cfg, 550 + k)
            entry["difference_ci"] = ci(a[ia].mean(axis=1) - b[ib].mean(axis=1), cfg)
        else:
            entry["difference_ci"] = [math.nan, math.nan]
        entry["difference"] = entry["faithful_mean"] - entry["unfaithful_mean"]
        rows[name] = entry
    return {"ties_excluded": int(np.sum(np.isnan(label) & ~np.isnan(item_means(data, "faithfulness")))),
            "rows": rows}


def correctness_split(data: StudyData, cfg: AnalysisConfig) -> dict[str, Any]:
    """Table 13: answer-level means and error-type shares for correct vs incorrect predictions."""
    names = [*DIMENSIONS, *(f"err_{k}" for k in ERROR_KEYS)]
    out: dict[str, Any] = {}
    for g, (group, mask) in enumerate((("incorrect", ~data.correct), ("correct", data.correct))):
        entry: dict[str, Any] = {"n_items": int(mask.sum())}
        entry["n_answers"] = int((~np.isnan(data.scores["coherence"][mask])).sum())
        for k, name in enumerate(names):
            m = data.scores[name][mask]
            sums, counts = np.nansum(m, axis=1), (~np.isnan(m)).sum(axis=1)
            total = counts.sum()
            value = float(sums.sum() / total) if total else math.nan
            idx = resamples(len(sums), cfg, 600 + 20 * g + k)
            with np.errstate(all="ignore"):
                boot = sums[idx].sum(axis=1) / counts[idx].sum(axis=1) if len(sums) else []
            entry[name] = {"mean": value, "ci": ci(boot, cfg)}
        out[group] = entry
    return out
