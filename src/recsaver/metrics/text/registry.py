"""The text metrics, by name: the one list of them (tables, studies, reports and the CLI read it here).

A metric is a class in a file of its own that satisfies the `Metric` protocol (metric.py; subclass
`BaseMetric` for the defaults), registered by one line in `REGISTRY` (module and class as a string, so
nothing is imported until the metric is used):

    "chrf": MetricSpec("chrf", "chrF", "recsaver.metrics.text.chrf:ChrF"),

`TextScorer` builds the metrics it is asked for from here; every table, study analysis and report
labels and orders text metrics by this registry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .metric import METRIC_MEMBERS, BaseMetric, Live, Metric, ScorerOptions

TextMetric = Metric  # the protocol's earlier name

__all__ = ["REGISTRY", "BaseMetric", "Live", "Metric", "MetricSpec", "ScorerOptions", "TextMetric", "label",
           "text_metrics"]


@dataclass(frozen=True)
class MetricSpec:
    name: str  # key in every result, e.g. "rouge1"
    label: str  # column title in tables and reports
    target: str  # "module:Class"; the class takes ScorerOptions and satisfies `Metric`
    higher_is_better: bool = True  # direction (the metric class says the same)

    def load(self, options: ScorerOptions) -> Metric:
        """Build the metric; it must satisfy `Metric` and agree with this line on name, label, direction."""
        module, _, cls = self.target.partition(":")
        metric = getattr(importlib.import_module(module), cls)(options)
        if not isinstance(metric, Metric):
            missing = [m for m in METRIC_MEMBERS if not hasattr(metric, m)]
            raise TypeError(f"{self.target} is not a text Metric (missing: {', '.join(sorted(missing))})")
        said = (metric.name, metric.label, metric.higher_is_better)
        if said != (self.name, self.label, self.higher_is_better):
            raise ValueError(f"{self.target} says (name, label, higher_is_better) = {said}, its registry line "
                             f"{(self.name, self.label, self.higher_is_better)}")
        return metric


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
