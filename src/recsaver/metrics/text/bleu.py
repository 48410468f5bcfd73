"""BLEU: sacrebleu's sentence BLEU with the whole pool as references, scaled to 0..1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .registry import Live, ScorerOptions


class Bleu:
    def __init__(self, options: ScorerOptions):
        from sacrebleu.metrics import BLEU

        self._bleu = BLEU(effective_order=True)
        self.timings: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def score_all(self, live: Sequence[Live]) -> list[float]:
        return [self.one(c, p) for _, c, p in live]

    def one(self, cand: str, pool: list[str]) -> float:
        value = self._bleu.sentence_score(cand, pool).score / 100.0
        return min(max(value, 0.0), 1.0)  # 100.00000000000004 happens for an exact match

    def signature(self, pool_sizes: set[int]) -> dict[str, Any]:
        # sacrebleu's signature needs the number of references: 'var' when pools differ.
        self._bleu.num_refs = next(iter(pool_sizes)) if len(pool_sizes) == 1 else -1
        return {
            "library": "sacrebleu",
            "call": "BLEU(effective_order=True).sentence_score(candidate, pool)",
            "sacrebleu_signature": self._bleu.get_signature().format(),
            "tokenization": "sacrebleu 13a",
            "scale": "sacrebleu score / 100",
            "multi_reference": "sacrebleu multi-reference BLEU over the whole pool (n-gram counts "
            "clipped by the max count in any reference; brevity penalty from the closest "
            "reference length)",
        }
