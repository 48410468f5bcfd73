"""The `Metric` protocol every text metric satisfies, and `BaseMetric`, which fills in the defaults.

A text metric is a class in a file of its own, registered by one line in ``registry.py``:

    class ChrF(BaseMetric):
        name, label, higher_is_better = "chrf", "chrF", True

        def __init__(self, options: ScorerOptions):
            super().__init__(options)
            from sacrebleu.metrics import CHRF
            self._chrf = CHRF()

        def score_all(self, live: Sequence[Live]) -> list[float]:
            return [self._chrf.sentence_score(c, pool).score / 100 for _, c, pool in live]

        def signature(self) -> str:
            return f"sacrebleu chrF {self._chrf.get_signature().format()}"

`TextScorer` calls `score_all` with the examples that have a candidate and a non-empty pool and
records `signature()` (and the `details` dict) of every metric in its results, so a results file
names exactly what computed each number; tables, studies and reports take the name, label and
direction from the registry.
"""

from __future__ import annotations

import importlib.metadata
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

Live = tuple[str, str, list[str]]  # (example id, candidate text, its non-empty reference pool)


@dataclass(frozen=True)
class ScorerOptions:
    """What a metric may need to build itself (only BERTScore reads most of it)."""

    bert_model: str = "all-MiniLM-L6-v2"
    bert_num_layers: int | None = None
    bert_batch_size: int = 64
    device: str = "cpu"
    reuse_heap: bool = True
    bert_match_threads: int | None = 1


@runtime_checkable
class Metric(Protocol):
    """One text metric: a value per candidate against its reference pool, and what produced it.

    ``name`` is the key in every result and must equal the registry's key; ``label`` the column
    title; ``higher_is_better`` the direction (all four paper metrics: True).
    """

    name: str
    label: str
    higher_is_better: bool
    timings: dict[str, float]  # sub-phase seconds of the last `score_all` (may stay empty)
    counts: dict[str, int]  # work counts of the last `score_all` (may stay empty)

    def score_all(self, live: Sequence[Live]) -> list[float]:
        """Per-example values, one per ``(example_id, candidate, pool)`` of ``live``, in order."""
        ...

    def aggregate(self, values: Sequence[float]) -> float:
        """The corpus value of per-example values (`BaseMetric`: their mean)."""
        ...

    def signature(self) -> str:
        """One line naming the library, its version and the settings that computed the values."""
        ...

    def details(self, pool_sizes: set[int]) -> dict[str, Any]:
        """The metric's part of `TextScorer.signature()` (JSON-serialisable); ``pool_sizes``: the
        sizes of the reference pools scored (`BaseMetric`: ``{"signature": signature()}``)."""
        ...


#: the members of `Metric` (what ``isinstance(x, Metric)`` looks for), for error messages
METRIC_MEMBERS = ("name", "label", "higher_is_better", "timings", "counts", "score_all", "aggregate", "signature",
                  "details")


def version(dist: str) -> str:
    """The installed version of a distribution, or ``"not installed"``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean (``nan`` for no values), as ``numpy.mean`` computes it."""
    if not len(values):
        return math.nan
    import numpy as np

    return float(np.mean(np.asarray(values, dtype=float)))


class BaseMetric:
    """Defaults for a `Metric`: empty ``timings``/``counts``, the mean as aggregate, and a
    ``details`` dict holding the signature.  Subclasses set ``name``, ``label`` and
    ``higher_is_better`` and write ``score_all`` and ``signature``."""

    name: str
    label: str
    higher_is_better: bool = True

    def __init__(self, options: ScorerOptions | None = None):
        self.timings: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def score_all(self, live: Sequence[Live]) -> list[float]:
        raise NotImplementedError

    def aggregate(self, values: Sequence[float]) -> float:
        return mean(values)

    def signature(self) -> str:
        raise NotImplementedError

    def details(self, pool_sizes: set[int]) -> dict[str, Any]:
        return {"signature": self.signature()}
