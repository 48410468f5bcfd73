"""Text-metric names and the per-example results: :class:`TextScores`, :class:`TextScoreList`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .registry import text_metrics

TEXT_METRICS = text_metrics()  # the registry's names (registry.py is the one list)


@dataclass(frozen=True)
class TextScores:
    """One scored example: metric name -> value in 0..1, and the size of its pool."""

    example_id: str
    n_refs: int
    scores: dict[str, float]
    empty_candidate: bool = False


class TextScoreList(list):
    """``list[TextScores]`` plus ``excluded``: ids of the examples with an empty pool."""

    def __init__(self, items: Iterable[TextScores] = (), excluded: Iterable[str] = ()):
        super().__init__(items)
        self.excluded: list[str] = list(excluded)

    @property
    def n_empty_candidates(self) -> int:
        return sum(1 for s in self if s.empty_candidate)
