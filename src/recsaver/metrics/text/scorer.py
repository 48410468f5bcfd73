"""`TextScorer`: the registered text metrics (registry.py) of candidates against reference pools."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from .bertscore import MINILM, MINILM_PACKAGE, _version
from .registry import REGISTRY, Metric, ScorerOptions, text_metrics
from .results import TextScoreList, TextScores

_VERSIONED = ("sacrebleu", "rouge-score", "nltk", "bert-score", "torch", "transformers")


class TextScorer:
    """Score reasoning texts against reference pools; see the package doc (recsaver.metrics.text) for the rules."""

    def __init__(
        self,
        metrics: Sequence[str] | None = None,
        *,
        bert_model: str = MINILM,
        bert_num_layers: int | None = None,
        bert_batch_size: int = 64,
        device: str = "cpu",
        reuse_heap: bool = True,
        bert_match_threads: int | None = 1,
    ):
        metrics = tuple(metrics) if metrics is not None else text_metrics()
        unknown = [m for m in metrics if m not in REGISTRY]
        if unknown or not metrics:
            raise ValueError(f"metrics must be a non-empty subset of {text_metrics()}, got {metrics}")
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"duplicate metrics in {metrics}")
        self.metrics = metrics
        self.device = device
        self.bert_batch_size = bert_batch_size
        self.reuse_heap = reuse_heap
        self._pool_sizes: set[int] = set()
        options = ScorerOptions(bert_model=bert_model, bert_num_layers=bert_num_layers,
                                bert_batch_size=bert_batch_size, device=device, reuse_heap=reuse_heap,
                                bert_match_threads=bert_match_threads)
        self._metrics: dict[str, Metric] = {m: REGISTRY[m].load(options) for m in metrics}
        #: wall seconds of the last ``score()`` call, per metric (and BERTScore's phases)
        self.last_timings: dict[str, float] = {}
        #: work counts of the last ``score()`` call (BERTScore: distinct texts encoded, pairs matched)
        self.last_counts: dict[str, int] = {}

    @property
    def _bert(self) -> Any:
        """BERTScore's engine, when it is one of the metrics (tests and the benchmark read it)."""
        metric = self._metrics.get("bertscore")
        return getattr(metric, "engine", None)

    @property
    def wordnet_path(self) -> Any:
        return getattr(self._metrics.get("meteor"), "wordnet_path", None)

    # -- scoring ---------------------------------------------------------------------------

    def score(
        self,
        candidates: Sequence[tuple[str, str | None]],
        references: Mapping[str, Sequence[str]],
    ) -> TextScoreList:
        """Score ``(example_id, reasoning or None)`` pairs against ``references[example_id]``.

        Returns one :class:`TextScores` per example with a non-empty pool, in input order;
        ``result.excluded`` lists the ids whose pool is empty.
        """
        seen: set[str] = set()
        todo: list[tuple[str, str | None, list[str]]] = []
        excluded: list[str] = []
        for example_id, text in candidates:
            if example_id in seen:
                raise ValueError(f"duplicate example_id {example_id!r} in candidates")
            seen.add(example_id)
            pool = references.get(example_id, ())
            if isinstance(pool, str):
                raise TypeError(f"references[{example_id!r}] is a str; expected a sequence of str")
            pool = [r for r in pool if isinstance(r, str) and r.strip()]
            if not pool:
                excluded.append(example_id)
                continue
            cand = text if (isinstance(text, str) and text.strip()) else None
            todo.append((example_id, cand, pool))
            self._pool_sizes.add(len(pool))

        live = [(i, c, p) for i, c, p in todo if c is not None]
        per_metric: dict[str, list[float]] = {}
        timings: dict[str, float] = {}
        counts: dict[str, int] = {}
        for name, metric in self._metrics.items():
            t0 = time.perf_counter()
            per_metric[name] = metric.score_all(live)
            timings[name] = time.perf_counter() - t0
            timings.update(metric.timings)
            counts.update(metric.counts)
        self.last_timings = timings
        if counts:
            self.last_counts = counts

        out = TextScoreList(excluded=excluded)
        k = 0
        for example_id, cand, pool in todo:
            if cand is None:
                scores = {m: 0.0 for m in self.metrics}
            else:
                scores = {m: float(per_metric[m][k]) for m in self.metrics}
                k += 1
            out.append(TextScores(example_id, len(pool), scores, empty_candidate=cand is None))
        return out

    # -- provenance ------------------------------------------------------------------------

    def signature(self) -> dict:
        """Provenance for a results file: library versions, the scoring rules, each metric's
        ``details`` under its name, and ``signatures``: each metric's one-line `Metric.signature`."""
        versions = {d: _version(d) for d in _VERSIONED}
        sig: dict[str, Any] = {
            "metrics": list(self.metrics),
            "versions": versions,
            "scale": "every metric in 0..1",
            "empty_pool": "example excluded (not scored), listed in result.excluded",
            "empty_candidate": "None or blank candidate scores 0.0 on every metric and is counted",
            "blank_references": "dropped from the pool",
        }
        for name, metric in self._metrics.items():
            sig[name] = metric.details(self._pool_sizes)
        sig["signatures"] = {name: metric.signature() for name, metric in self._metrics.items()}
        bert = self._bert
        if bert is not None and bert.description.startswith(MINILM):
            versions[MINILM_PACKAGE] = _version(MINILM_PACKAGE)
        return sig
