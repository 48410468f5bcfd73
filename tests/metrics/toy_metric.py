"""Toy text metric: candidate length over the longest reference's, capped at 1."""

from __future__ import annotations

from collections.abc import Sequence

from recsaver.metrics.text.metric import BaseMetric, Live


class LengthRatio(BaseMetric):
    name, label, higher_is_better = "lenratio", "Length ratio", True

    def score_all(self, live: Sequence[Live]) -> list[float]:
        return [min(1.0, len(c.split()) / max(len(r.split()) for r in pool)) for _, c, pool in live]

    def signature(self) -> str:
        return "toy len(candidate.split()) / max(len(reference.split())), capped at 1"
