"""`TextScorer`: BLEU, ROUGE-1, METEOR and BERTScore of candidates against reference pools."""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

from recsaver.metrics.wordnet import ensure_wordnet

from .bertscore import MINILM, MINILM_PACKAGE, _BertScoreEngine, _version
from .heap import _heap_reuse
from .meteor import _MeteorWordNet
from .results import TEXT_METRICS, TextScoreList, TextScores
from .tokens import TOKEN_PATTERN, _cached_rouge_tokenizer, _cached_stemmer, tokenize

_VERSIONED = ("sacrebleu", "rouge-score", "nltk", "bert-score", "torch", "transformers")


class TextScorer:
    """Score reasoning texts against reference pools; see the package doc (recsaver.metrics.text) for the rules."""

    def __init__(
        self,
        metrics: Sequence[str] = TEXT_METRICS,
        *,
        bert_model: str = MINILM,
        bert_num_layers: int | None = None,
        bert_batch_size: int = 64,
        device: str = "cpu",
        reuse_heap: bool = True,
        bert_match_threads: int | None = 1,
    ):
        metrics = tuple(metrics)
        unknown = [m for m in metrics if m not in TEXT_METRICS]
        if unknown or not metrics:
            raise ValueError(f"metrics must be a non-empty subset of {TEXT_METRICS}, got {metrics}")
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"duplicate metrics in {metrics}")
        self.metrics = metrics
        self.device = device
        self.bert_batch_size = bert_batch_size
        self.reuse_heap = reuse_heap
        self._pool_sizes: set[int] = set()
        self._stemmer = _cached_stemmer() if {"rouge1", "meteor"} & set(metrics) else None
        #: wall seconds of the last ``score()`` call, per metric (and BERTScore's phases)
        self.last_timings: dict[str, float] = {}
        #: BERTScore work of the last ``score()`` call: distinct texts encoded, pairs matched
        self.last_counts: dict[str, int] = {}

        if "bleu" in metrics:
            from sacrebleu.metrics import BLEU

            self._bleu = BLEU(effective_order=True)
        if "rouge1" in metrics:
            from rouge_score.rouge_scorer import RougeScorer

            self._rouge_tok = _cached_rouge_tokenizer(self._stemmer)
            self._rouge = RougeScorer(["rouge1"], use_stemmer=True, tokenizer=self._rouge_tok)
        if "meteor" in metrics:
            self.wordnet_path = ensure_wordnet()  # raises MetricUnavailableError, loudly
            from nltk.corpus import wordnet
            from nltk.translate.meteor_score import meteor_score

            self._meteor = meteor_score
            self._wordnet = _MeteorWordNet(wordnet)
        self._bert: _BertScoreEngine | None = None
        if "bertscore" in metrics:
            self._bert = _BertScoreEngine(bert_model, bert_num_layers, bert_batch_size, device,
                                          match_threads=bert_match_threads)

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
        for m in self.metrics:
            t0 = time.perf_counter()
            if m == "bleu":
                per_metric[m] = [self._bleu_one(c, p) for _, c, p in live]
            elif m == "rouge1":
                per_metric[m] = [self._rouge.score_multi(p, c)["rouge1"].fmeasure for _, c, p in live]
                self._rouge_tok.clear()
            elif m == "meteor":
                per_metric[m] = self._meteor_all(live)
            else:
                per_metric[m] = self._bertscore_all(live, timings)
            timings[m] = time.perf_counter() - t0
        self.last_timings = timings

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

    def _bleu_one(self, cand: str, pool: list[str]) -> float:
        value = self._bleu.sentence_score(cand, pool).score / 100.0
        return min(max(value, 0.0), 1.0)  # 100.00000000000004 happens for an exact match

    def _meteor_all(self, live) -> list[float]:
        tokens: dict[str, list[str]] = {}

        def tok(t: str) -> list[str]:
            got = tokens.get(t)
            if got is None:
                got = tokens[t] = tokenize(t)
            return got

        return [
            self._meteor([tok(r) for r in pool], tok(cand), stemmer=self._stemmer, wordnet=self._wordnet)
            for _, cand, pool in live
        ]

    def _bertscore_all(self, live, timings: dict[str, float]) -> list[float]:
        if not live:
            return []
        assert self._bert is not None
        with _heap_reuse(self.reuse_heap):
            t0 = time.perf_counter()
            texts = [c for _, c, _ in live] + [r for _, _, pool in live for r in pool]
            store = self._bert.encode(texts)
            t1 = time.perf_counter()
            pairs = [(c, r) for _, c, pool in live for r in pool]
            f1 = self._bert.pair_f1(pairs, store)
            out = [max(f1[(c, r)] for r in pool) for _, c, pool in live]
            self.last_counts = {"distinct_texts": len(store), "pairs": len(pairs), "distinct_pairs": len(f1)}
            del store  # free the token embeddings before the heap is trimmed
        timings["bertscore_encode"] = t1 - t0
        timings["bertscore_match"] = time.perf_counter() - t1
        return out

    # -- provenance ------------------------------------------------------------------------

    def signature(self) -> dict:
        versions = {d: _version(d) for d in _VERSIONED}
        sig: dict[str, Any] = {
            "metrics": list(self.metrics),
            "versions": versions,
            "scale": "every metric in 0..1",
            "empty_pool": "example excluded (not scored), listed in result.excluded",
            "empty_candidate": "None or blank candidate scores 0.0 on every metric and is counted",
            "blank_references": "dropped from the pool",
        }
        if "bleu" in self.metrics:
            # sacrebleu's signature needs the number of references: 'var' when pools differ.
            sizes = self._pool_sizes
            self._bleu.num_refs = next(iter(sizes)) if len(sizes) == 1 else -1
            sig["bleu"] = {
                "library": "sacrebleu",
                "call": "BLEU(effective_order=True).sentence_score(candidate, pool)",
                "sacrebleu_signature": self._bleu.get_signature().format(),
                "tokenization": "sacrebleu 13a",
                "scale": "sacrebleu score / 100",
                "multi_reference": "sacrebleu multi-reference BLEU over the whole pool (n-gram counts "
                "clipped by the max count in any reference; brevity penalty from the closest "
                "reference length)",
            }
        if "rouge1" in self.metrics:
            sig["rouge1"] = {
                "library": "rouge-score",
                "call": 'RougeScorer(["rouge1"], use_stemmer=True).score_multi(pool, candidate)',
                "value": "F1 (fmeasure)",
                "tokenization": "rouge-score DefaultTokenizer: lower-case, non-alphanumerics to "
                "spaces, Porter stemmer",
                "multi_reference": "max over references (score_multi keeps the max-F1 reference)",
            }
        if "meteor" in self.metrics:
            sig["meteor"] = {
                "library": "nltk",
                "call": "nltk.translate.meteor_score.meteor_score([tokenize(r) for r in pool], "
                "tokenize(candidate))",
                "parameters": {"alpha": 0.9, "beta": 3.0, "gamma": 0.5, "preprocess": "str.lower",
                               "stemmer": "PorterStemmer", "wordnet": "WordNet 3.0"},
                "tokenization": f"regex re.findall({TOKEN_PATTERN!r}) (no punkt)",
                "wordnet_path": str(self.wordnet_path),
                "multi_reference": "max over references (nltk meteor_score)",
            }
        if "bertscore" in self.metrics:
            assert self._bert is not None
            b = self._bert
            sig["bertscore"] = {
                "library": "bert-score",
                "value": "F1",
                "encoder": b.description,
                "model_type": b.model_type,
                "num_layers": b.num_layers,
                "idf": False,
                "rescale_with_baseline": False,
                "baseline": "none" + (" (no rescale baseline exists for all-MiniLM-L6-v2)"
                                       if b.description.startswith(MINILM) else ""),
                "tokenization": "the encoder's Hugging Face tokenizer, slow (bert-score default "
                "use_fast_tokenizer=False), truncated at its max length",
                "bert_score_hash": b.scorer.hash,
                "multi_reference": "max F1 over references (as BERTScorer.score with a list of "
                "references per candidate)",
                "batch_size": b.batch_size,
                "device": b.device,
                "distinct_texts_encoded_once": True,
            }
            if b.description.startswith(MINILM):
                versions[MINILM_PACKAGE] = _version(MINILM_PACKAGE)
        return sig
