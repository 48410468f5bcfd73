"""The text metrics, by name: the one list of them (tables, studies, reports and the CLI read it here).

A metric is a class in a file of its own with the `TextMetric` shape, registered by one line in
`REGISTRY` (module and class as a string, so nothing heavy is imported until the metric is used):

    "chrf": MetricSpec("chrf", "chrF", "recsaver.metrics.text.chrf:ChrF"),

`TextScorer` builds the metrics it is asked for from here; every table, study analysis and report
labels and orders text metrics by this registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

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


class TextMetric(Protocol):
    """One text metric: a value in 0..1 per candidate against its pool, and what produced it."""

    timings: dict[str, float]  # sub-phase seconds of the last `score_all` (may stay empty)
    counts: dict[str, int]  # work counts of the last `score_all` (may stay empty)

    def score_all(self, live: Sequence[Live]) -> list[float]: ...

    def signature(self, pool_sizes: set[int]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class MetricSpec:
    name: str  # key in every result, e.g. "rouge1"
    label: str  # column title in tables and reports
    target: str  # "module:Class"; the class takes ScorerOptions
    higher_is_better: bool = True

    def load(self, options: ScorerOptions) -> TextMetric:
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)(options)


REGISTRY: dict[str, MetricSpec] = {
    "bleu": MetricSpec("bleu", "BLEU", "recsaver.metrics.text.bleu:Bleu"),
    "rouge1": MetricSpec("rouge1", "ROUGE-1 F1", "recsaver.metrics.text.rouge:Rouge1"),
    "meteor": MetricSpec("meteor", "METEOR", "recsaver.metrics.text.meteor:Meteor"),
    "bertscore": MetricSpec("bertscore", "BERTScore", "recsaver.metrics.text.bertscore:BertScore"),
}


def text_metrics() -> tuple[str, ...]:
    """The registered metric names, in table order."""
    return tuple(REGISTRY)


def label(name: str) -> str:
    spec = REGISTRY.get(name)
    return spec.label if spec else name
