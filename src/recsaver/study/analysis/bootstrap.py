"""Percentile bootstrap over items (all of an item's answers move together), seeded.

Hand-written rather than scipy.stats.bootstrap because resamples where a statistic is
undefined (a constant rater makes kappa 0/0) must be skipped, not poison the CI.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class AnalysisConfig:
    n_resamples: int = 1000
    seed: int = 0
    level: float = 0.95


def resamples(n: int, cfg: AnalysisConfig, salt: int) -> np.ndarray:
    rng = np.random.default_rng([cfg.seed, salt])
    return rng.integers(0, n, size=(cfg.n_resamples, n)) if n else np.zeros((0, 0), dtype=int)


def ci(values: Sequence[float] | np.ndarray, cfg: AnalysisConfig) -> list[float]:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return [math.nan, math.nan]
    a = 100 * (1 - cfg.level) / 2
    return [float(x) for x in np.percentile(v, [a, 100 - a])]


def boot_ci(stat: Callable[[np.ndarray], float], n: int, cfg: AnalysisConfig, salt: int) -> list[float]:
    return ci([stat(idx) for idx in resamples(n, cfg, salt)], cfg)


def to_float(x: Any) -> float:
    return float(x) if x is not None else math.nan
