"""The llama.cpp pieces `llama_batch.BatchedDecoder` sets up: a context with one KV stream per
sequence, and one sampler chain per request."""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .llama_batch import BatchRequest


def enable_parallel(llm: Any, n_seq_max: int, n_ctx_seq: int) -> None:
    """Rebuild `llm`'s context with `n_seq_max` KV streams of `n_ctx_seq` cells each."""
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


def make_sampler(llm: Any, r: BatchRequest) -> Any:
    """One request's sampler chain, built as `Llama.create_completion` builds its own: penalties (none),
    grammar, then greedy, or top_k/typical/top_p/min_p/temp/dist(seed)."""
    import llama_cpp
    from llama_cpp._internals import LlamaSampler

    s = LlamaSampler()
    s.add_penalties(n_vocab=llm.n_vocab(), penalty_last_n=llm.last_n_tokens_size, penalty_repeat=1.0,
                    penalty_freq=0.0, penalty_present=0.0)
    if r.grammar is not None:
        g = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, r.grammar.encode("utf-8"), b"root")
        if not g:
            s.close()
            raise ValueError("llama.cpp could not parse the grammar")
        llama_cpp.llama_sampler_chain_add(s.sampler, g)
    if r.temperature <= 0.0:
        s.add_greedy()
    else:
        s.add_top_k(r.top_k)
        s.add_typical(1.0, 1)
        s.add_top_p(r.top_p, 1)
        s.add_min_p(r.min_p, 1)
        s.add_temp(r.temperature)
        s.add_dist(r.seed)
    return s
