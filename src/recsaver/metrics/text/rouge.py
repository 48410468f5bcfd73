"""ROUGE-1 F1: rouge-score's `score_multi` (the best reference of the pool), Porter-stemmed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .metric import BaseMetric, Live, ScorerOptions, version
from .tokens import _cached_rouge_tokenizer, _cached_stemmer


class Rouge1(BaseMetric):
    name, label, higher_is_better = "rouge1", "ROUGE-1 F1", True

    def __init__(self, options: ScorerOptions | None = None):
        super().__init__(options)
        from rouge_score.rouge_scorer import RougeScorer

        self._tok = _cached_rouge_tokenizer(_cached_stemmer())
        self._rouge = RougeScorer(["rouge1"], use_stemmer=True, tokenizer=self._tok)

    def score_all(self, live: Sequence[Live]) -> list[float]:
        out = [self._rouge.score_multi(p, c)["rouge1"].fmeasure for _, c, p in live]
        self._tok.clear()
        return out

    def signature(self) -> str:
        return (f"rouge-score {version('rouge-score')} RougeScorer(['rouge1'], use_stemmer=True).score_multi "
                f"F1, max over the pool [tok:DefaultTokenizer+Porter(nltk {version('nltk')})]")

    def details(self, pool_sizes: set[int]) -> dict[str, Any]:
        return {
            "library": "rouge-score",
            "call": 'RougeScorer(["rouge1"], use_stemmer=True).score_multi(pool, candidate)',
            "value": "F1 (fmeasure)",
            "tokenization": "rouge-score DefaultTokenizer: lower-case, non-alphanumerics to "
            "spaces, Porter stemmer",
            "multi_reference": "max over references (score_multi keeps the max-F1 reference)",
        }


if TYPE_CHECKING:
    from .metric import Metric

    _: Metric = Rouge1(ScorerOptions())
