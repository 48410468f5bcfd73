"""The text-metric registry and the `Metric` protocol: a new metric is one class (a file of its own)
plus one registry line, and scoring, aggregates, signatures, the paper tables and the study report
pick it up."""

from __future__ import annotations

import json
import math

import pytest
import sacrebleu
from rouge_score.rouge_scorer import RougeScorer

from recsaver.config.settings import ScoreSettings
from recsaver.metrics.text import (
    REGISTRY,
    BaseMetric,
    Metric,
    MetricSpec,
    ScorerOptions,
    TextScorer,
    aggregate,
    label,
    text_metrics,
)
from recsaver.metrics.text.bleu import Bleu
from recsaver.metrics.text.metric import METRIC_MEMBERS
from recsaver.metrics.text.rouge import Rouge1
from recsaver.reports.paper import text_columns

from .toy_metric import LengthRatio

CAND = "A gentle cream that suits very dry skin and does not smell."
POOL = ["The user has very dry skin and wants a gentle cream without perfume.",
        "They dislike strong smells; a mild cream for dry skin suits them."]


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> str:
    # the one registry line (added for the test's duration only; tests/metrics/toy_metric.py is the file)
    monkeypatch.setitem(REGISTRY, "lenratio",
                        MetricSpec("lenratio", "Length ratio", "tests.metrics.toy_metric:LengthRatio"))
    return "lenratio"


def test_a_registered_metric_is_scored_aggregated_signed_and_labelled(toy: str) -> None:
    scorer = TextScorer(["bleu", "rouge1", toy])
    scores = scorer.score([("a", CAND), ("b", None), ("c", "x")], {"a": POOL, "b": ["any"], "c": []})
    assert [s.example_id for s in scores] == ["a", "b"] and scores.excluded == ["c"]
    assert scores[0].scores[toy] == pytest.approx(12 / 13) and scores[1].scores[toy] == 0.0
    # the real metrics beside it are untouched: direct library calls
    want_bleu = sacrebleu.metrics.BLEU(effective_order=True).sentence_score(CAND, POOL).score / 100
    want_rouge = RougeScorer(["rouge1"], use_stemmer=True).score_multi(POOL, CAND)["rouge1"].fmeasure
    assert scores[0].scores["bleu"] == pytest.approx(want_bleu) and 0 < want_bleu < 1
    assert scores[0].scores["rouge1"] == pytest.approx(want_rouge) and 0 < want_rouge < 1
    assert list(scores[0].scores) == ["bleu", "rouge1", toy]

    sig = scorer.signature()
    assert sig["metrics"] == ["bleu", "rouge1", toy]
    assert sig["signatures"][toy] == LengthRatio().signature() and sig[toy] == {"signature": sig["signatures"][toy]}
    json.dumps(sig)
    summary = aggregate(scores, n_resamples=10)
    assert list(summary["metrics"]) == ["bleu", "rouge1", toy]  # registry order
    assert summary["metrics"][toy]["mean"] == pytest.approx(LengthRatio().aggregate([12 / 13, 0.0]))
    assert text_columns()[toy] == "Length ratio" and label(toy) == "Length ratio"
    assert text_metrics()[-1] == toy


def test_the_metrics_satisfy_the_protocol(toy: str) -> None:
    opts = ScorerOptions()
    for metric in (Bleu(opts), Rouge1(opts), LengthRatio(opts)):
        assert isinstance(metric, Metric)
        assert (metric.name, metric.label, metric.higher_is_better) == (
            REGISTRY[metric.name].name, REGISTRY[metric.name].label, REGISTRY[metric.name].higher_is_better)
        assert metric.aggregate([0.25, 0.5, 0.75]) == 0.5 and math.isnan(metric.aggregate([]))
    assert set(METRIC_MEMBERS) == {m for m in dir(BaseMetric) if not m.startswith("_")} | {
        "name", "label", "higher_is_better", "timings", "counts"}
    assert not isinstance(object(), Metric)


def test_signatures_name_library_version_and_settings() -> None:
    import importlib.metadata as md

    scorer = TextScorer(["bleu", "rouge1"])
    scorer.score([("a", CAND), ("b", "dry skin")], {"a": POOL, "b": POOL[:1]})
    sig = scorer.signature()["signatures"]
    assert sig["bleu"].startswith("sacrebleu ") and f"version:{sacrebleu.__version__}" in sig["bleu"]
    assert "nrefs:var|case:mixed|eff:yes|tok:13a|smooth:exp" in sig["bleu"]  # sacrebleu's own signature
    assert f"rouge-score {md.version('rouge-score')}" in sig["rouge1"] and "use_stemmer=True" in sig["rouge1"]
    # the existing per-metric provenance keeps its keys
    assert scorer.signature()["bleu"]["sacrebleu_signature"].startswith("nrefs:var|")


def test_a_metric_that_breaks_the_protocol_or_its_line_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "half", MetricSpec("half", "Half", "tests.metrics.test_registry:Half"))
    with pytest.raises(TypeError, match="missing: signature"):
        TextScorer(["half"])
    monkeypatch.setitem(REGISTRY, "lenratio", MetricSpec("lenratio", "Len", "tests.metrics.toy_metric:LengthRatio"))
    with pytest.raises(ValueError, match="registry line"):
        TextScorer(["lenratio"])


class Half:
    """No signature: not a Metric."""

    name, label, higher_is_better = "half", "Half", True
    timings: dict[str, float] = {}
    counts: dict[str, int] = {}

    def __init__(self, options: ScorerOptions):
        pass

    def score_all(self, live):
        return [0.5 for _ in live]

    def aggregate(self, values):
        return 0.5

    def details(self, pool_sizes):
        return {}


def test_defaults_everywhere_are_the_registry() -> None:
    assert ScoreSettings().metrics == ()  # every registered metric
    assert text_metrics() == tuple(REGISTRY) and text_metrics()[:4] == ("bleu", "rouge1", "meteor", "bertscore")
    assert TextScorer(["bleu"]).metrics == ("bleu",)
    with pytest.raises(ValueError, match="subset of"):
        TextScorer(["nope"])
