"""Human alignment statistics (paper Section 5.1, Tables 6-9 and 13; Appendix B).

- Table 6: per dimension, the mean answer, the average pairwise quadratic-weighted Cohen's
  kappa (sklearn `cohen_kappa_score(weights="quadratic")`, Appendix B) and the average
  pairwise Pearson r. Each rater pair uses the items both rated. The p-value of the average
  r is the Pearson t-test of r-bar with n = the mean number of shared items (pairs share
  raters, so their p-values cannot be combined as independent tests).
- Table 7: per item, coherence and insightfulness averaged over raters, against each NLG
  metric: Pearson, Spearman and Kendall (scipy), with p-values.
- Table 8: items split by majority faithfulness (ties left out, counted); Welch's two-sample
  t-test (scipy `ttest_ind(equal_var=False)`) for the human and the NLG scores.
- Table 9: Table 7's coherence-Pearson with self-verified and with unverified references,
  and their difference on the same items.
- Table 13: items whose predicted rating was right vs wrong: mean coherence, share faithful,
  mean insightfulness and the share of answers naming each error type.

Confidence intervals: percentile bootstrap over ITEMS, seeded (`bootstrap`). The other
modules: `loading` (answers and metric scores), `agreement` (Table 6), `correlation`
(Tables 7 and 9), `splits` (Tables 8 and 13); `analyze` below puts every table together.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# _pairwise and _pairwise_boot are imported by the tests, which pin the vectorised bootstrap to sklearn.
from .agreement import _pairwise, _pairwise_boot, agreement
from .bootstrap import AnalysisConfig
from .correlation import correlate, nlg_correlations, verification_effect
from .loading import DIMENSIONS, LIKERT, METRIC_ORDER, StudyData, item_means, load_scores, load_study
from .splits import correctness_split, faithful_items, faithfulness_tests

__all__ = [
    "DIMENSIONS", "LIKERT", "METRIC_ORDER", "AnalysisConfig", "StudyData", "_pairwise", "_pairwise_boot",
    "agreement", "analyze", "correctness_split", "correlate", "faithful_items", "faithfulness_tests",
    "item_means", "load_scores", "load_study", "nlg_correlations", "verification_effect",
]


def analyze(study: Path, scores: Sequence[Path], unverified: Sequence[Path] = (),
            cfg: AnalysisConfig = AnalysisConfig()) -> dict[str, Any]:
    """Every table as one JSON-ready dict (report.py renders it)."""
    data = load_study(study)
    if not any(np.any(~np.isnan(m)) for m in data.scores.values()):
        raise ValueError(f"{study}: no complete answers yet")
    nlg = load_scores(study, scores, data.keys) if scores else {}
    result: dict[str, Any] = {
        "n_items": len(data.item_ids),
        "n_items_rated": int(np.sum(~np.isnan(item_means(data, "coherence")))),
        "n_answers": int(np.sum(~np.isnan(data.scores["coherence"]))),
        "raters": data.raters,
        "config": {"n_resamples": cfg.n_resamples, "seed": cfg.seed, "level": cfg.level},
        "table6_agreement": agreement(data, cfg),
        "table13_correctness": correctness_split(data, cfg),
    }
    if nlg:
        result["metrics"] = list(nlg)
        result["n_items_scored"] = int(np.sum(~np.isnan(next(iter(nlg.values())))))
        result["table7_correlations"] = nlg_correlations(data, nlg, cfg)
        result["table8_faithfulness"] = faithfulness_tests(data, nlg, cfg)
        if unverified:
            result["table9_verification"] = verification_effect(
                data, nlg, load_scores(study, unverified, data.keys), cfg)
    else:
        result["table8_faithfulness"] = faithfulness_tests(data, {}, cfg)
    return result
