"""BLEU: sacrebleu's sentence BLEU with the whole pool as references, scaled to 0..1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .metric import BaseMetric, Live, ScorerOptions


class Bleu(BaseMetric):
    name, label, higher_is_better = "bleu", "BLEU", True

    def __init__(self, options: ScorerOptions | None = None):
        super().__init__(options)
        from sacrebleu.metrics import BLEU

        self._bleu = BLEU(effective_order=True)
        self._pool_sizes: set[int] = set()  # of every pool scored, for sacrebleu's nrefs

    def score_all(self, live: Sequence[Live]) -> list[float]:
        self._pool_sizes.update(len(p) for _, _, p in live)
        return [self.one(c, p) for _, c, p in live]

    def one(self, cand: str, pool: list[str]) -> float:
        value = self._bleu.sentence_score(cand, pool).score / 100.0
        return min(max(value, 0.0), 1.0)  # 100.00000000000004 happens for an exact match

    def _sacrebleu_signature(self, pool_sizes: set[int]) -> str:
        # sacrebleu's signature needs the number of references: 'var' when pools differ.
        self._bleu.num_refs = next(iter(pool_sizes)) if len(pool_sizes) == 1 else -1
        return self._bleu.get_signature().format()

    def signature(self) -> str:
        """sacrebleu's own signature (nrefs of the pools scored so far, case, eff, tok, smooth, version)."""
        return (f"sacrebleu BLEU(effective_order=True).sentence_score, pool as references, score/100 "
                f"[{self._sacrebleu_signature(self._pool_sizes)}]")

    def details(self, pool_sizes: set[int]) -> dict[str, Any]:
        return {
            "library": "sacrebleu",
            "call": "BLEU(effective_order=True).sentence_score(candidate, pool)",
            "sacrebleu_signature": self._sacrebleu_signature(pool_sizes),
            "tokenization": "sacrebleu 13a",
            "scale": "sacrebleu score / 100",
            "multi_reference": "sacrebleu multi-reference BLEU over the whole pool (n-gram counts "
            "clipped by the max count in any reference; brevity penalty from the closest "
            "reference length)",
        }


if TYPE_CHECKING:
    from .metric import Metric

    _: Metric = Bleu(ScorerOptions())
