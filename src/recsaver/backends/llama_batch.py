"""Batched multi-sequence decoding on one llama.cpp context (issue 17), standalone for now.

`BatchedDecoder(llm, n_parallel)` decodes up to `n_parallel` sequences in one `llama_batch`
per step through llama-cpp-python's low-level API, on an already-loaded `llama_cpp.Llama`:

- continuous batching: each sequence is a slot (a KV sequence id); a finished slot takes the
  next queued request at once; prompt chunks and single decode tokens share a batch;
- shared prefixes: the queue is sorted by prompt tokens, and a new request takes the longest
  prefix of its prompt already in (or being evaluated into) any slot's KV with
  `llama_memory_seq_cp` (a unified KV cache: the copy shares cells, it costs nothing), so the
  M samples of one prompt evaluate it once (each re-evaluates only its last prompt token, for
  its own logits); a later request that extends a finished sequence (the forced-rating read-out
  after an answer) reuses that sequence's prompt + answer the same way;
- one sampler chain per sequence, built as `Llama.create_completion` builds its own
  (penalties, grammar, then greedy, or top_k/typical/top_p/min_p/temp/dist(seed)), so a
  request's output equals create_completion's up to the float rounding of batched kernels.

The context must have `n_seq_max >= n_parallel` and a unified KV cache; `Llama` takes neither
option, so `enable_parallel` rebuilds the Llama's context with them (the decoder does it when
needed). The decoder uses that context's sequences 0..n_parallel-1 and clears the KV cache
before and after each `generate` call (so `Llama`'s own prefix cache restarts cold).
KV admission is conservative: a slot reserves len(prompt) + max_tokens cells, shared or not.
"""

from __future__ import annotations

import ctypes
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BatchRequest:
    """One sequence to decode. `logits=True` also returns the next-token logits after the prompt
    (with `max_tokens=0`, a probe: nothing is sampled)."""

    prompt: tuple[int, ...]
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    grammar: str | None = None
    stop_ids: tuple[int, ...] = ()
    stop: tuple[str, ...] = ()
    top_k: int = 40  # create_completion's defaults, so results match it
    min_p: float = 0.05
    logits: bool = False


@dataclass
class BatchResult:
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None  # "stop" (EOG, stop id or string) or "length"
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens taken from a KV sequence instead of evaluated
    logits: np.ndarray | None = None
    error: str | None = None
    latency_s: float = 0.0


@dataclass
class DecodeStats:
    steps: int = 0
    batch_tokens: int = 0  # tokens evaluated (prompt + decode)
    sampled: int = 0
    reused_tokens: int = 0
    decode_s: float = 0.0


def enable_parallel(llm: Any, n_seq_max: int) -> None:
    """Rebuild `llm`'s context with `n_seq_max` sequences and a unified KV cache (same n_ctx)."""
    import llama_cpp
    from llama_cpp import _internals

    ctx = llm._ctx
    if llama_cpp.llama_n_seq_max(ctx.ctx) >= n_seq_max and bool(llm.context_params.kv_unified):
        return
    if n_seq_max > llama_cpp.llama_max_parallel_sequences():
        raise ValueError(f"n_seq_max {n_seq_max} > llama.cpp's {llama_cpp.llama_max_parallel_sequences()}")
    llm.context_params.n_seq_max = n_seq_max
    llm.context_params.kv_unified = True
    ctx.close()  # free the old KV cache first
    llm._ctx = _internals.LlamaContext(model=llm._model, params=llm.context_params, verbose=llm.verbose)
    if getattr(llm, "_lora_adapter", None) is not None:
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(llm._lora_adapter)
        scales = (ctypes.c_float * 1)(llm.lora_scale)
        if llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, adapters, 1, scales):
            raise RuntimeError("failed to set the LoRA adapter on the rebuilt context")
    llm.n_tokens = 0


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class _Slot:
    def __init__(self, seq: int):
        self.seq = seq
        self.kv: list[int] = []  # tokens whose KV is in this sequence, at positions 0..len-1
        self.req: int | None = None  # index of the request it decodes; None when idle
        self.pending: list[int] = []  # tokens to evaluate next (prompt remainder, or the sampled token)
        self.wait: tuple[_Slot, int] | None = None  # (source slot, prefix length) to copy once evaluated
        self.sampler: Any = None
        self.prompt: tuple[int, ...] = ()
        self.out: list[int] = []
        self.out_idx = -1  # index in the current batch of this slot's logits row
        self.reserve = 0
        self.reused = 0
        self.first_logits: np.ndarray | None = None
        self.started = 0.0

    def future(self) -> list[int]:
        """The tokens this slot's KV will hold once its pending prompt is evaluated."""
        if self.wait is not None:
            return list(self.prompt)
        return self.kv + self.pending if not self.out else self.kv


class BatchedDecoder:
    def __init__(self, llm: Any, n_parallel: int = 8, n_batch: int | None = None):
        import llama_cpp

        self.lc = llama_cpp
        self.llm = llm
        self.n_parallel = n_parallel
        enable_parallel(llm, n_parallel)
        self.n_ctx = llama_cpp.llama_n_ctx(llm._ctx.ctx)
        self.n_batch = min(n_batch or llama_cpp.llama_n_batch(llm._ctx.ctx), llama_cpp.llama_n_batch(llm._ctx.ctx))
        self.n_vocab = llm.n_vocab()
        self.vocab = llm._model.vocab
        self.stats = DecodeStats()

    # ---- KV helpers -----------------------------------------------------------
    @property
    def _mem(self) -> Any:
        return self.lc.llama_get_memory(self.llm._ctx.ctx)

    def _clear(self) -> None:
        self.lc.llama_memory_clear(self._mem, False)
        self.llm.n_tokens = 0  # Llama's own prefix cache is gone with it

    def _sampler(self, r: BatchRequest) -> Any:
        from llama_cpp._internals import LlamaSampler

        s = LlamaSampler()
        s.add_penalties(n_vocab=self.n_vocab, penalty_last_n=self.llm.last_n_tokens_size, penalty_repeat=1.0,
                        penalty_freq=0.0, penalty_present=0.0)
        if r.grammar is not None:
            g = self.lc.llama_sampler_init_grammar(self.vocab, r.grammar.encode("utf-8"), b"root")
            if not g:
                s.close()
                raise ValueError("llama.cpp could not parse the grammar")
            self.lc.llama_sampler_chain_add(s.sampler, g)
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

    # ---- the loop ---------------------------------------------------------------
    def generate(self, requests: Sequence[BatchRequest],
                 on_result: Callable[[int, BatchResult], None] | None = None) -> list[BatchResult]:
        results: list[BatchResult | None] = [None] * len(requests)
        order = sorted(range(len(requests)), key=lambda i: (requests[i].prompt, i))
        queue = deque(order)
        slots = [_Slot(s) for s in range(self.n_parallel)]
        batch = self.lc.llama_batch_init(self.n_batch, 0, 1)
        self._clear()

        def finish(slot: _Slot, res: BatchResult) -> None:
            assert slot.req is not None
            res.prompt_tokens = len(slot.prompt)
            res.latency_s = time.perf_counter() - slot.started
            i = slot.req
            results[i] = res
            if slot.sampler is not None:
                slot.sampler.close()
            slot.req, slot.sampler, slot.pending, slot.wait, slot.out = None, None, [], None, []
            if res.error is not None:  # its KV state is unknown: drop it
                self.lc.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
                slot.kv = []
            if on_result:
                on_result(i, res)

        try:
            while queue or any(s.req is not None for s in slots):
                self._resolve_waits(slots)
                self._admit(requests, queue, slots, finish)
                active = [s for s in slots if s.req is not None and s.wait is None and s.pending]
                if not active:
                    if any(s.wait is not None for s in slots):
                        raise RuntimeError("a slot waits on a prefix that no slot evaluates")
                    continue
                self._fill(batch, active)
                t0 = time.perf_counter()
                rc = self.lc.llama_decode(self.llm._ctx.ctx, batch)
                self.stats.decode_s += time.perf_counter() - t0
                self.stats.steps += 1
                self.stats.batch_tokens += batch.n_tokens
                if rc != 0:
                    for s in active:
                        finish(s, BatchResult(error=f"llama_decode returned {rc}"))
                    continue
                for s in active:
                    if s.out_idx >= 0 and s.req is not None:  # active slots hold a request
                        self._after_logits(s, requests[s.req], finish)
        finally:
            for s in slots:
                if s.sampler is not None:
                    s.sampler.close()
            self.lc.llama_batch_free(batch)
            self._clear()
        return [r if r is not None else BatchResult(error="not run") for r in results]

    def _resolve_waits(self, slots: list[_Slot]) -> None:
        changed = True
        while changed:
            changed = False
            for s in slots:
                if s.wait is None:
                    continue
                src, n = s.wait
                if src.wait is not None:
                    continue
                if len(src.kv) >= n and src.kv[:n] == list(s.prompt[:n]):
                    self._copy(src, s, n)
                elif _common_prefix(src.future() if src.req is not None else src.kv, s.prompt) < n:
                    # the source fell away: evaluate the whole prompt
                    self.lc.llama_memory_seq_rm(self._mem, s.seq, -1, -1)
                    s.kv, s.pending = [], list(s.prompt)
                else:
                    continue
                s.wait = None
                changed = True

    def _copy(self, src: _Slot, dst: _Slot, n: int) -> None:
        self.lc.llama_memory_seq_rm(self._mem, dst.seq, -1, -1)
        self.lc.llama_memory_seq_cp(self._mem, src.seq, dst.seq, 0, n)
        dst.kv = list(dst.prompt[:n])
        dst.pending = list(dst.prompt[n:])
        self.stats.reused_tokens += n
        dst.reused = n

    def _admit(self, requests: Sequence[BatchRequest], queue: deque[int], slots: list[_Slot],
               finish: Callable[[_Slot, BatchResult], None]) -> None:
        for slot in slots:
            if slot.req is not None or not queue:
                continue
            i = queue[0]
            r = requests[i]
            need = len(r.prompt) + r.max_tokens
            used = sum(s.reserve if s.req is not None else len(s.kv) for s in slots if s is not slot)
            if used + need > self.n_ctx:
                for s in slots:  # drop idle residual KV first
                    if s.req is None and s.kv:
                        self.lc.llama_memory_seq_rm(self._mem, s.seq, -1, -1)
                        s.kv = []
                used = sum(s.reserve for s in slots if s.req is not None)
                if used + need > self.n_ctx and used > 0:
                    return  # wait for a slot to finish
            queue.popleft()
            slot.req, slot.prompt, slot.out, slot.reserve = i, r.prompt, [], need
            slot.started = time.perf_counter()
            slot.reused, slot.first_logits = 0, None
            if not r.prompt or need > self.n_ctx:
                finish(slot, BatchResult(error=f"prompt of {len(r.prompt)} tokens + max_tokens {r.max_tokens} "
                                               f"does not fit the context of {self.n_ctx}" if r.prompt
                                         else "empty prompt"))
                continue
            try:
                slot.sampler = self._sampler(r) if r.max_tokens > 0 else None
            except Exception as e:
                finish(slot, BatchResult(error=f"{type(e).__name__}: {e}"))
                continue
            self._place(slot, slots)

    def _place(self, slot: _Slot, slots: list[_Slot]) -> None:
        """Take the longest prefix of the slot's prompt that some slot holds or is evaluating."""
        prompt = slot.prompt
        cap = len(prompt) - 1  # evaluate at least the last prompt token, for this sequence's logits
        own = min(_common_prefix(slot.kv, prompt), cap)
        best, best_n = slot, own
        for s in slots:
            if s is slot or (s.req is None and not s.kv):
                continue
            n = min(_common_prefix(s.future() if s.req is not None else s.kv, prompt), cap)
            if n > best_n or (n == best_n and n > 0 and best is not slot and best.wait is not None
                              and s.wait is None):
                best, best_n = s, n
        if best is slot:
            self.lc.llama_memory_seq_rm(self._mem, slot.seq, own, -1)
            slot.kv = list(prompt[:own])
            slot.pending = list(prompt[own:])
            self.stats.reused_tokens += own
            slot.reused = own
        elif best.wait is None and len(best.kv) >= best_n:
            self._copy(best, slot, best_n)
        else:
            slot.wait = (best, best_n)
            slot.pending = []

    def _fill(self, batch: Any, active: list[_Slot]) -> None:
        """Decode tokens first, then prompt chunks, up to n_batch tokens; logits at each slot's last."""
        batch.n_tokens = 0
        budget = self.n_batch
        for s in sorted(active, key=lambda s: (not s.out, len(s.pending))):
            s.out_idx = -1
            take = min(len(s.pending), budget)
            if take == 0:
                continue
            for k in range(take):
                j = batch.n_tokens + k
                batch.token[j] = s.pending[k]
                batch.pos[j] = len(s.kv) + k
                batch.n_seq_id[j] = 1
                batch.seq_id[j][0] = s.seq
                batch.logits[j] = False
            batch.n_tokens += take
            s.kv.extend(s.pending[:take])
            del s.pending[:take]
            budget -= take
            if not s.pending:
                s.out_idx = batch.n_tokens - 1
                batch.logits[s.out_idx] = True

    def _after_logits(self, s: _Slot, r: BatchRequest, finish: Callable[[_Slot, BatchResult], None]) -> None:
        if r.logits and not s.out:
            ptr = self.lc.llama_get_logits_ith(self.llm._ctx.ctx, s.out_idx)
            s.first_logits = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()
        if r.max_tokens <= 0:
            finish(s, BatchResult(logits=s.first_logits, reused_tokens=s.reused))
            return
        tok = int(self.lc.llama_sampler_sample(s.sampler.sampler, self.llm._ctx.ctx, s.out_idx))
        self.stats.sampled += 1
        reason = None
        if self.lc.llama_vocab_is_eog(self.vocab, tok) or tok in r.stop_ids:
            reason = "stop"
        else:
            s.out.append(tok)
        raw = self.llm.detokenize(s.out, prev_tokens=list(s.prompt)) if reason or r.stop or \
            len(s.out) >= r.max_tokens else b""
        if reason is None and r.stop:
            hits = [raw.index(x.encode("utf-8")) for x in r.stop if x.encode("utf-8") in raw]
            if hits:
                raw, reason = raw[: min(hits)], "stop"
        if reason is None and len(s.out) >= r.max_tokens:
            reason = "length"
        if reason is None:
            s.pending = [tok]
            return
        finish(s, BatchResult(tokens=list(s.out), text=raw.decode("utf-8", errors="ignore"), finish_reason=reason,
                              reused_tokens=s.reused, logits=s.first_logits))
