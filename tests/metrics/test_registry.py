"""The text-metric registry: a new metric is one class (a file of its own in src) plus one registry line,
and scoring, aggregates, the paper tables and the study report pick it up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from recsaver.config.settings import ScoreSettings
from recsaver.metrics.text import REGISTRY, MetricSpec, ScorerOptions, TextScorer, aggregate, label, text_metrics
from recsaver.report.paper import text_columns


class LengthRatio:
    """Toy metric: candidate length over the longest reference's, capped at 1."""

    def __init__(self, options: ScorerOptions):
        self.timings: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def score_all(self, live: Sequence[tuple[str, str, list[str]]]) -> list[float]:
        return [min(1.0, len(c.split()) / max(len(r.split()) for r in pool)) for _, c, pool in live]

    def signature(self, pool_sizes: set[int]) -> dict[str, Any]:
        return {"call": "len(candidate) / max(len(reference))", "tokenization": "str.split"}


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> str:
    # the "one registry line" (here added for the test's duration only)
    monkeypatch.setitem(REGISTRY, "lenratio", MetricSpec("lenratio", "Length ratio",
                                                         "tests.metrics.test_registry:LengthRatio"))
    return "lenratio"


def test_a_registered_metric_is_scored_aggregated_and_labelled(toy: str) -> None:
    scorer = TextScorer(["bleu", toy])
    scores = scorer.score([("a", "gentle cream for dry skin"), ("b", None), ("c", "x")],
                          {"a": ["a gentle cream for very dry skin", "fine"], "b": ["any"], "c": []})
    assert [s.example_id for s in scores] == ["a", "b"] and scores.excluded == ["c"]
    assert scores[0].scores[toy] == pytest.approx(5 / 7) and scores[1].scores[toy] == 0.0
    assert scorer.signature()[toy]["tokenization"] == "str.split"
    assert list(aggregate(scores, n_resamples=10)["metrics"]) == ["bleu", toy]  # registry order
    assert text_columns()[toy] == "Length ratio" and label(toy) == "Length ratio"
    assert text_metrics()[-1] == toy


def test_defaults_everywhere_are_the_registry() -> None:
    assert ScoreSettings().metrics == text_metrics() == ("bleu", "rouge1", "meteor", "bertscore")
    assert TextScorer(["bleu"]).metrics == ("bleu",)
    with pytest.raises(ValueError, match="subset of"):
        TextScorer(["nope"])
