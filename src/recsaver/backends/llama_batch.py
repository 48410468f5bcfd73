"""Batched multi-sequence decoding on one llama.cpp context (issue 17): the llamacpp backend's engine.

`BatchedDecoder(llm, n_parallel)` decodes up to `n_parallel` sequences in one `llama_batch` per
step through llama-cpp-python's low-level API, on an already-loaded `llama_cpp.Llama`:

- continuous batching: each sequence is a slot (a KV sequence id); a finished slot takes the
  next queued request at once;
- shared prefixes: the queue is sorted by prompt tokens, a request goes to the idle slot whose KV
  shares most of its prompt, and a longer prefix held (or being evaluated) by another slot is
  copied with `llama_memory_seq_cp`. So the M samples of one prompt evaluate it once (each
  re-evaluates only its last prompt token, for its own logits), and a follow-up `submit`ted from a
  result's callback with `front=True` (the forced-rating read-out after an answer) extends the
  answer's own sequence;
- one sampler chain per sequence, built as `Llama.create_completion` builds its own
  (penalties, grammar, then greedy, or top_k/typical/top_p/min_p/temp/dist(seed)).

**Same results as one sequence at a time**, as far as llama.cpp's CPU kernels allow:
- one KV stream per sequence (`kv_unified=False`): each sequence attends only to its own cells,
  laid out as a lone sequence's are. (With a unified cache the cells of 8 sequences interleave, the
  attention sums reorder, and SmolLM2 matched one-at-a-time greedy decoding on 0 of 8 prompts.)
- a prompt chunk is evaluated alone, cut where `Llama.eval` cuts it (see `_fill`).
- a step of one token per sequence is then exact for SmolLM2 (Q4_1) at any batch size and for
  every model at up to 3 sequences. With 4 or more rows, llama.cpp multiplies Q4_K weights (the
  Qwen files) with its repacked GEMM kernels, which quantize and sum activations differently than
  the one-row GEMV: logits move by ~0.3 and near-ties flip (docs/benchmarks.md has the agreement).
The price of separate streams is that a cross-stream copy duplicates the source's whole stream
(llama.cpp copies full stream buffers), so short shared prefixes (< `MIN_COPY` tokens) are
evaluated again instead.

The decoder rebuilds the Llama's context (`llama_setup.enable_parallel`). Slots keep their KV
between `run` calls; `create_completion` and `eval` must not be called on a Llama with a decoder.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .llama_setup import enable_parallel, make_sampler

MIN_COPY = 32  # prompt tokens a cross-stream copy must save to be worth a full-stream copy


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
    copies: int = 0
    decode_s: float = 0.0  # in llama_decode, of which:
    chunk_s: float = 0.0  # prompt chunks (one sequence's prompt tokens per step)
    chunk_tokens: int = 0
    single_steps: int = 0  # steps of one token per sequence (decoding, and 1-token prompt remainders)


Callback = Callable[[BatchResult], None]


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


@dataclass
class _Job:
    req: BatchRequest
    done: Callback


class _Slot:
    def __init__(self, seq: int):
        self.seq = seq
        self.kv: list[int] = []  # tokens whose KV is in this sequence, at positions 0..len-1
        self.job: _Job | None = None  # the request it decodes; None when idle
        self.pending: list[int] = []  # tokens to evaluate next (prompt remainder, or the sampled token)
        self.wait: tuple[_Slot, int] | None = None  # (source slot, prefix length) to copy once evaluated
        self.copied_from = False  # a copy from this slot is pending: keep its cells until the next decode
        self.sampler: Any = None
        self.out: list[int] = []
        self.out_idx = -1  # index in the current batch of this slot's logits row
        self.reused = 0
        self.first_logits: np.ndarray | None = None
        self.started = 0.0

    @property
    def prompt(self) -> tuple[int, ...]:
        return self.job.req.prompt if self.job else ()

    def future(self) -> list[int]:
        """The tokens this slot's KV will hold once its pending prompt is evaluated."""
        if self.job is None:
            return self.kv
        if self.wait is not None:
            return list(self.prompt)
        return self.kv + self.pending if not self.out else self.kv


class BatchedDecoder:
    def __init__(self, llm: Any, n_parallel: int = 8, n_ctx_seq: int | None = None, n_batch: int | None = None,
                 before_step: Callable[[], None] | None = None):
        import llama_cpp

        if n_parallel < 1:
            raise ValueError(f"parallel must be >= 1, got {n_parallel}")
        self.lc, self.llm, self.n_parallel = llama_cpp, llm, n_parallel
        enable_parallel(llm, n_parallel, n_ctx_seq or llama_cpp.llama_n_ctx_seq(llm._ctx.ctx))
        self.n_ctx_seq = llama_cpp.llama_n_ctx_seq(llm._ctx.ctx)
        self.n_batch = min(n_batch or llama_cpp.llama_n_batch(llm._ctx.ctx), llama_cpp.llama_n_batch(llm._ctx.ctx))
        self.n_vocab = llm.n_vocab()
        self.vocab = llm._model.vocab
        self.before_step = before_step
        self.stats = DecodeStats()
        self.slots = [_Slot(s) for s in range(n_parallel)]
        self.queue: deque[_Job] = deque()
        self._chunk_turn = False
        self.reset()

    def reset(self) -> None:
        """Forget every slot's KV (the next requests start cold)."""
        self.lc.llama_memory_clear(self._mem, False)
        self.llm.n_tokens = 0  # Llama's own prefix cache held the same KV
        for s in self.slots:
            s.kv = []

    @property
    def _mem(self) -> Any:
        return self.lc.llama_get_memory(self.llm._ctx.ctx)

    def _rm(self, slot: _Slot, start: int) -> None:
        self.lc.llama_memory_seq_rm(self._mem, slot.seq, start, -1)
        del slot.kv[start:]

    # ---- the queue ------------------------------------------------------------------
    def submit(self, req: BatchRequest, done: Callback, front: bool = False) -> None:
        """Queue one request; `done(result)` is called when it finishes (it may submit more)."""
        (self.queue.appendleft if front else self.queue.append)(_Job(req, done))

    def generate(self, requests: Sequence[BatchRequest],
                 on_result: Callable[[int, BatchResult], None] | None = None) -> list[BatchResult]:
        """Decode `requests` (sorted by prompt, so shared prefixes meet); results in request order."""
        results: list[BatchResult | None] = [None] * len(requests)

        def done_for(i: int) -> Callback:
            def done(res: BatchResult) -> None:
                results[i] = res
                if on_result:
                    on_result(i, res)
            return done

        for i in sorted(range(len(requests)), key=lambda i: (requests[i].prompt, i)):
            self.submit(requests[i], done_for(i))
        self.run()
        return [r if r is not None else BatchResult(error="not run") for r in results]

    def run(self) -> None:
        """Decode until the queue is empty and every slot is idle."""
        batch = self.lc.llama_batch_init(self.n_batch, 0, 1)
        try:
            while self.queue or any(s.job is not None for s in self.slots):
                self._resolve_waits()
                self._admit()
                active = [s for s in self.slots if s.job is not None and s.wait is None and s.pending]
                if not active:
                    if any(s.wait is not None for s in self.slots):
                        raise RuntimeError("a slot waits on a prefix that no slot evaluates")
                    for s in self.slots:
                        s.copied_from = False
                    continue
                if self.before_step:
                    self.before_step()
                chunk = self._fill(batch, active)
                t0 = time.perf_counter()
                rc = self.lc.llama_decode(self.llm._ctx.ctx, batch)
                took = time.perf_counter() - t0
                self._count(chunk, took, batch.n_tokens)
                for s in self.slots:
                    s.copied_from = False
                if rc != 0:
                    for s in active:
                        self._finish(s, BatchResult(error=f"llama_decode returned {rc}"))
                    continue
                for s in active:  # the slots of this step (_fill set out_idx) that are still running
                    if s.out_idx >= 0 and s.job is not None:
                        self._after_logits(s, s.job.req)
        except BaseException:
            for s in self.slots:  # a broken run leaves no half-evaluated sequence behind
                if s.job is not None:
                    self._drop(s)
            self.queue.clear()
            raise
        finally:
            self.lc.llama_batch_free(batch)

    def _count(self, chunk: bool, took: float, n_tokens: int) -> None:
        st = self.stats
        st.decode_s, st.steps, st.batch_tokens = st.decode_s + took, st.steps + 1, st.batch_tokens + n_tokens
        if chunk:
            st.chunk_s, st.chunk_tokens = st.chunk_s + took, st.chunk_tokens + n_tokens
        else:
            st.single_steps += 1

    def _drop(self, slot: _Slot) -> None:
        if slot.sampler is not None:
            slot.sampler.close()
        slot.job, slot.sampler, slot.pending, slot.wait, slot.out = None, None, [], None, []
        self._rm(slot, 0)

    def _finish(self, slot: _Slot, res: BatchResult) -> None:
        job = slot.job
        assert job is not None
        res.prompt_tokens = len(job.req.prompt)
        res.latency_s = time.perf_counter() - slot.started
        if slot.sampler is not None:
            slot.sampler.close()
        slot.job, slot.sampler, slot.pending, slot.wait, slot.out = None, None, [], None, []
        if res.error is not None:  # its KV state is unknown: drop it
            self._rm(slot, 0)
        job.done(res)

    # ---- placing a request ------------------------------------------------------------
    def _resolve_waits(self) -> None:
        changed = True
        while changed:
            changed = False
            for s in self.slots:
                if s.wait is None:
                    continue
                src, n = s.wait
                if src.wait is not None:
                    continue
                if len(src.kv) >= n and src.kv[:n] == list(s.prompt[:n]):
                    self._copy(src, s, n)
                elif _common_prefix(src.future(), s.prompt) < n:  # the source fell away: evaluate it all
                    self._rm(s, 0)
                    s.pending = list(s.prompt)
                else:
                    continue
                s.wait = None
                changed = True

    def _copy(self, src: _Slot, dst: _Slot, n: int) -> None:
        # Across streams llama.cpp copies only whole streams: copy it all, then cut it at n.
        self.lc.llama_memory_seq_rm(self._mem, dst.seq, -1, -1)
        self.lc.llama_memory_seq_cp(self._mem, src.seq, dst.seq, -1, -1)
        self.lc.llama_memory_seq_rm(self._mem, dst.seq, n, -1)
        dst.kv = list(dst.prompt[:n])
        dst.pending = list(dst.prompt[n:])
        src.copied_from = True
        self.stats.reused_tokens += n
        self.stats.copies += 1
        dst.reused = n

    def _admit(self) -> None:
        while self.queue:
            idle = [s for s in self.slots if s.job is None and not s.copied_from]
            if not idle:
                return
            job = self.queue.popleft()
            r = job.req
            # The idle slot whose KV shares most of the prompt; else the one holding least.
            slot = max(idle, key=lambda s: (_common_prefix(s.kv, r.prompt), -len(s.kv)))
            slot.job, slot.out, slot.started = job, [], time.perf_counter()
            slot.reused, slot.first_logits = 0, None
            need = len(r.prompt) + r.max_tokens
            if not r.prompt or need > self.n_ctx_seq:
                self._finish(slot, BatchResult(error=f"prompt of {len(r.prompt)} tokens + max_tokens {r.max_tokens} "
                                                     f"does not fit the context of {self.n_ctx_seq}" if r.prompt
                                               else "empty prompt"))
                continue
            try:
                slot.sampler = make_sampler(self.llm, r) if r.max_tokens > 0 else None
            except Exception as e:
                self._finish(slot, BatchResult(error=f"{type(e).__name__}: {e}"))
                continue
            self._place(slot)

    def _place(self, slot: _Slot) -> None:
        """Reuse the slot's own KV, or copy a longer prefix that another slot holds or is evaluating."""
        prompt = slot.prompt
        cap = len(prompt) - 1  # evaluate at least the last prompt token, for this sequence's logits
        own = min(_common_prefix(slot.kv, prompt), cap)
        best, best_n = slot, own
        for s in self.slots:
            if s is slot or (s.job is None and not s.kv):
                continue
            n = min(_common_prefix(s.future(), prompt), cap)
            if n >= best_n + MIN_COPY and (s.wait is None or n > best_n + MIN_COPY):
                best, best_n = s, n
        if best is slot:
            self._rm(slot, own)
            slot.pending = list(prompt[own:])
            self.stats.reused_tokens += own
            slot.reused = own
        elif best.wait is None and len(best.kv) >= best_n:
            self._copy(best, slot, best_n)
        else:
            slot.wait = (best, best_n)
            slot.pending = []

    # ---- one step ---------------------------------------------------------------------
    def _fill(self, batch: Any, active: list[_Slot]) -> bool:
        """One step: every sequence's single next token, or (every other step) one sequence's next prompt
        chunk alone, cut at n_batch from where its evaluation starts, as `Llama.eval` cuts it.

        A prompt chunk never shares a step: llama.cpp splits a multi-sequence batch into ubatches with
        as many tokens of each sequence, which would cut the chunk elsewhere, and the kernels sum a
        many-row chunk in another order than a few rows, so the prompt's KV (and every later token)
        would differ from one-at-a-time decoding. Measured on real predict prompts: the logits after
        a prompt are bit-identical batched or alone, copied prefixes included.
        """
        singles = [s for s in active if len(s.pending) == 1]
        chunks = [s for s in active if len(s.pending) > 1]
        self._chunk_turn = not self._chunk_turn
        chunk = bool(chunks) and (self._chunk_turn or not singles)
        chosen = [min(chunks, key=lambda s: s.started)] if chunk else singles
        for s in active:
            s.out_idx = -1
        batch.n_tokens = 0
        for s in chosen:
            take = min(len(s.pending), self.n_batch - batch.n_tokens)
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
            if not s.pending:
                s.out_idx = batch.n_tokens - 1
                batch.logits[s.out_idx] = True
        return chunk

    def _after_logits(self, s: _Slot, r: BatchRequest) -> None:
        if r.logits and not s.out:
            ptr = self.lc.llama_get_logits_ith(self.llm._ctx.ctx, s.out_idx)
            s.first_logits = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()
        if r.max_tokens <= 0:
            self._finish(s, BatchResult(logits=s.first_logits, reused_tokens=s.reused))
            return
        tok = s.sampler.sample(self.llm._ctx.ctx, s.out_idx)
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
        self._finish(s, BatchResult(tokens=list(s.out), text=raw.decode("utf-8", errors="ignore"),
                                    finish_reason=reason, reused_tokens=s.reused, logits=s.first_logits))
