"""The llama.cpp pieces `llama_batch.BatchedDecoder` sets up: a context with one KV stream per
sequence, and one sampler chain per request."""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .llama_batch import BatchRequest


def enable_parallel(llm: Any, n_seq_max: int, n_ctx_seq: int) -> None:
    """Rebuild `llm`'s context with `n_seq_max` KV streams of `n_ctx_seq` cells each (`Llama` takes
    neither `n_seq_max` nor `kv_unified`)."""
    import llama_cpp
    from llama_cpp import _internals

    ctx = llm._ctx
    if (llama_cpp.llama_n_seq_max(ctx.ctx) == n_seq_max and not llm.context_params.kv_unified
            and llama_cpp.llama_n_ctx_seq(ctx.ctx) >= n_ctx_seq):
        return
    if n_seq_max > llama_cpp.llama_max_parallel_sequences():
        raise ValueError(f"n_parallel {n_seq_max} > llama.cpp's {llama_cpp.llama_max_parallel_sequences()}")
    llm.context_params.n_seq_max = n_seq_max
    llm.context_params.kv_unified = False
    llm.context_params.n_ctx = n_ctx_seq * n_seq_max
    ctx.close()  # free the old KV cache first
    llm._ctx = _internals.LlamaContext(model=llm._model, params=llm.context_params, verbose=llm.verbose)
    if getattr(llm, "_lora_adapter", None) is not None:
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(llm._lora_adapter)
        scales = (ctypes.c_float * 1)(llm.lora_scale)
        if llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, adapters, 1, scales):
            raise RuntimeError("failed to set the LoRA adapter on the rebuilt context")
    llm.n_tokens = 0


class SeqSampler:
    """One request's sampler. `sample(ctx, idx)` picks the next token from the logits of batch row `idx`
    and advances the sampler's state (grammar, penalties).

    Greedy decoding under a grammar takes the unconstrained argmax when the grammar accepts it, and
    applies the grammar to the whole vocabulary only when it does not, as llama.cpp's own
    common_sampler does. The token is the same as the chain (grammar, then greedy) would pick: the
    first maximum among the allowed tokens. Applying a grammar to Qwen's 151k-token vocabulary costs
    ~15 ms a token; checking one token, microseconds.
    """

    def __init__(self, chain: Any, grammar: Any = None, n_vocab: int = 0):
        self.chain, self.grammar, self.n_vocab = chain, grammar, n_vocab

    def sample(self, ctx: Any, idx: int) -> int:
        import llama_cpp

        if self.grammar is None:
            return int(llama_cpp.llama_sampler_sample(self.chain.sampler, ctx, idx))
        # The chain's penalties are neutral, so its greedy pick is the logits' first maximum.
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, idx), shape=(self.n_vocab,))
        tok = int(np.argmax(logits))
        if not self._allows(tok, float(logits[tok])):
            data = np.zeros(self.n_vocab, dtype=_TOKEN_DATA)
            data["id"] = np.arange(self.n_vocab, dtype=np.int32)
            data["logit"] = logits
            self._apply(data)
            tok = int(np.argmax(data["logit"]))  # the first maximum, as llama.cpp's greedy sampler picks
        llama_cpp.llama_sampler_accept(self.chain.sampler, tok)
        llama_cpp.llama_sampler_accept(self.grammar, tok)
        return tok

    def _allows(self, tok: int, logit: float) -> bool:
        data = np.array([(tok, logit, 0.0)], dtype=_TOKEN_DATA)
        self._apply(data)
        return bool(np.isfinite(data["logit"][0]))

    def _apply(self, data: np.ndarray) -> None:
        import llama_cpp

        arr = llama_cpp.llama_token_data_array(
            data=data.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)), size=len(data), selected=-1,
            sorted=False)
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(arr))

    def close(self) -> None:
        import llama_cpp

        self.chain.close()
        if self.grammar is not None:
            llama_cpp.llama_sampler_free(self.grammar)
            self.grammar = None


_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


def make_sampler(llm: Any, r: BatchRequest) -> SeqSampler:
    """One request's sampler chain, built as `Llama.create_completion` builds its own: penalties (none),
    grammar, then greedy, or top_k/typical/top_p/min_p/temp/dist(seed). Greedy keeps the grammar
    apart (`SeqSampler`)."""
    import llama_cpp
    from llama_cpp._internals import LlamaSampler

    s = LlamaSampler()
    s.add_penalties(n_vocab=llm.n_vocab(), penalty_last_n=llm.last_n_tokens_size, penalty_repeat=1.0,
                    penalty_freq=0.0, penalty_present=0.0)
    grammar = None
    if r.grammar is not None:
        grammar = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, r.grammar.encode("utf-8"), b"root")
        if not grammar:
            s.close()
            raise ValueError("llama.cpp could not parse the grammar")
    if r.temperature <= 0.0:
        s.add_greedy()
        return SeqSampler(s, grammar, llm.n_vocab())
    if grammar is not None:
        llama_cpp.llama_sampler_chain_add(s.sampler, grammar)  # the chain owns it now
    s.add_top_k(r.top_k)
    s.add_typical(1.0, 1)
    s.add_top_p(r.top_p, 1)
    s.add_min_p(r.min_p, 1)
    s.add_temp(r.temperature)
    s.add_dist(r.seed)
    return SeqSampler(s)
