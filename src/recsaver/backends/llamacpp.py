"""llama.cpp through llama-cpp-python: the default engine, CPU-friendly.

Every request runs through `llama_batch.BatchedDecoder` (issue 17): up to `n_parallel` sequences
decoded together in one llama_batch per step (continuous batching), each with its own sampler chain,
seed and grammar; shared prompt prefixes (the M samples of one prompt) are evaluated once and
copied; the rating read-out after an answer extends the answer's own sequence. `n_parallel=1`
decodes one sequence at a time, exactly as `Llama.create_completion` does (byte-identical outputs).
Batched outputs equal those for SmolLM2; for Q4_K models (Qwen) steps of 4+ sequences use other
kernels and some near-ties flip (llama_batch.py; measured in docs/benchmarks.md).

`probe` evaluates prompt tokens + the continuation's tokens (tokenized on its own, no BOS) and
reads the last position's logits: the candidates' softmax probabilities over the whole vocabulary
(float64), their sum is the mass and normalized they are the probs. Each candidate must be one
token. `generate(rating_probs=True)` reads P(1..5) through the same code
(`prompts.rating.rating_probe`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..prompts.rating import rating_probe
from .base import Generation, GenerationRequest, OnProbe, OnResult, Probe, ProbeRequest
from .cpu_share import CoreShare, available_cores
from .llama_batch import BatchedDecoder, BatchRequest, BatchResult


class LlamaCppBackend:
    def __init__(
        self,
        model_path: Path | str,
        *,
        model_id: str,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        n_parallel: int = 8,
        lora_path: str | None = None,
        verbose: bool = False,
    ):
        from llama_cpp import Llama  # heavy: imported only when this backend is chosen

        self.model_path = Path(model_path)
        self.model_id = model_id
        # No fixed n_threads: the cores are shared with the other llama.cpp runs of this machine (cpu_share).
        self.share = CoreShare() if n_threads is None else None
        self.n_threads = n_threads or available_cores()
        self.llm = Llama(
            model_path=str(self.model_path), n_ctx=n_ctx, n_threads=self.n_threads, n_threads_batch=self.n_threads,
            n_batch=n_batch, lora_path=lora_path, verbose=verbose, seed=0,
        )
        self.context_length = self.llm.n_ctx()
        # Rebuilds the context: n_parallel KV streams of n_ctx cells each.
        self.decoder = BatchedDecoder(self.llm, n_parallel=n_parallel, n_ctx_seq=n_ctx, before_step=self._share_cores)
        self._shared_at = 0.0
        self._formatter = self._chat_formatter()
        self._candidate_ids: dict[str, int] = {}

    # ---- prompt rendering -------------------------------------------------
    def _chat_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        vocab = self.llm._model

        def token_text(token_id: int) -> str:
            return vocab.token_get_text(token_id) if token_id >= 0 else ""

        return Jinja2ChatFormatter(
            template=template, eos_token=token_text(self.llm.token_eos()), bos_token=token_text(self.llm.token_bos()),
            add_generation_prompt=True,
        )

    def prompt_tokens(self, request: GenerationRequest | ProbeRequest) -> tuple[list[int], list[str]]:
        """The exact tokens the model sees, and the template's stop strings."""
        if request.prompt_text is not None or self._formatter is None:
            text = request.prompt_text if request.prompt_text is not None else "\n\n".join(
                c for _, c in request.messages)
            return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True), []
        rendered = self._formatter(messages=request.message_dicts())
        stops = rendered.stop if isinstance(rendered.stop, list) else ([rendered.stop] if rendered.stop else [])
        tokens = self.llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)
        return tokens, stops

    def count_tokens(self, request: GenerationRequest) -> int:
        return len(self.prompt_tokens(request)[0])

    def candidate_ids(self, candidates: Sequence[str]) -> list[int]:
        """The token id of each candidate string, tokenized alone; a ValueError naming the model and the
        candidate when one is not exactly one token."""
        ids = []
        for c in candidates:
            if c not in self._candidate_ids:
                toks = self.llm.tokenize(c.encode("utf-8"), add_bos=False, special=False)
                if len(toks) != 1:
                    raise ValueError(f"{self.model_id}: probe candidate {c!r} is {len(toks)} tokens {toks}, "
                                     "a candidate must be exactly one token")
                self._candidate_ids[c] = toks[0]
            ids.append(self._candidate_ids[c])
        return ids

    # ---- generation -------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], on_result: OnResult | None = None) -> list[Generation]:
        results: list[Generation] = [Generation(text=None, error="not run")] * len(requests)

        def finish(i: int, g: Generation) -> None:
            results[i] = g
            if on_result:
                on_result(i, g)

        # Sorted by prompt so that requests sharing one meet in the decoder (it copies the prefix).
        order = sorted(range(len(requests)), key=lambda i: (requests[i].messages, requests[i].prompt_text or "", i))
        with self.share.active() if self.share else nullcontext():
            for i in order:
                try:
                    self._submit_generation(i, requests[i], finish)
                except Exception as e:  # recorded, not raised: one bad call must not end a run
                    finish(i, Generation(text=None, error=f"{type(e).__name__}: {e}"))
            self.decoder.run()
        return results

    def _submit_generation(self, i: int, request: GenerationRequest,
                           finish: Callable[[int, Generation], None]) -> None:
        started = time.perf_counter()
        tokens, stops = self.prompt_tokens(request)
        p = request.params
        if len(tokens) + p.max_tokens > self.context_length:
            finish(i, Generation(text=None, error=f"prompt of {len(tokens)} tokens + max_tokens {p.max_tokens} "
                                                  f"exceeds the context of {self.context_length}",
                                 prompt_tokens=len(tokens)))
            return
        req = BatchRequest(prompt=tuple(tokens), max_tokens=p.max_tokens, temperature=p.temperature, top_p=p.top_p,
                           seed=request.sample_seed(), grammar=request.grammar, stop=tuple(p.stop) + tuple(stops))

        def answered(res: BatchResult) -> None:
            if res.error is not None:
                finish(i, Generation(text=None, error=res.error, prompt_tokens=len(tokens)))
                return
            g = Generation(text=res.text, prompt_tokens=len(tokens), completion_tokens=len(res.tokens),
                           finish_reason=res.finish_reason)
            if not request.rating_probs:
                finish(i, replace(g, latency_s=time.perf_counter() - started))
                return

            def rated(probe: Probe) -> None:
                if probe.error is not None:  # as before: a failed read-out fails the generation
                    finish(i, Generation(text=None, error=probe.error, prompt_tokens=len(tokens)))
                else:
                    finish(i, replace(g, rating_probs=probe.probs, digit_mass=probe.mass,
                                      latency_s=time.perf_counter() - started))

            # Queued first: it takes the answer's own slot, whose KV holds the prompt and the answer.
            self._submit_probe(rating_probe(request, res.text), rated, tokens, front=True)

        self.decoder.submit(req, answered)

    def probe(self, requests: Sequence[ProbeRequest], on_result: OnProbe | None = None) -> list[Probe]:
        results: list[Probe] = [Probe(probs=None, error="not run")] * len(requests)

        def finish_for(i: int) -> Callable[[Probe], None]:
            def finish(p: Probe) -> None:
                results[i] = p
                if on_result:
                    on_result(i, p)
            return finish

        # Requests that share a prompt are queued together, so the evaluated prefix is reused.
        order = sorted(range(len(requests)), key=lambda i: (requests[i].messages, requests[i].prompt_text or "",
                                                             requests[i].continuation, i))
        with self.share.active() if self.share else nullcontext():
            for i in order:
                self._submit_probe(requests[i], finish_for(i))
            self.decoder.run()
        return results

    def _share_cores(self) -> None:
        if self.share is None or time.monotonic() - self._shared_at < 1.0:
            return
        self._shared_at = time.monotonic()
        n = self.share.threads()
        if n != self.n_threads:
            import llama_cpp

            llama_cpp.llama_set_n_threads(self.llm._ctx.ctx, n, n)
            self.n_threads = n

    # ---- probes -------------------------------------------------------------
    def _submit_probe(self, request: ProbeRequest, finish: Callable[[Probe], None],
                      prompt_tokens: list[int] | None = None, front: bool = False) -> None:
        """Queue prompt + continuation; `finish` gets the candidates' share of the next-token softmax,
        or the error. `prompt_tokens` skips rendering the prompt again when the caller has its tokens."""
        started = time.perf_counter()
        try:
            ids = self.candidate_ids(request.candidates)
            if prompt_tokens is None:
                prompt_tokens = self.prompt_tokens(request)[0]
            full = prompt_tokens + self.llm.tokenize(request.continuation.encode("utf-8"), add_bos=False,
                                                     special=False)
            if len(full) > self.context_length:
                raise ValueError(f"prompt + continuation of {len(full)} tokens exceeds the context of "
                                 f"{self.context_length}")
        except Exception as e:  # recorded, not raised: one bad call must not end a run
            finish(Probe(probs=None, error=f"{type(e).__name__}: {e}", latency_s=time.perf_counter() - started))
            return

        def read(res: BatchResult) -> None:
            elapsed = time.perf_counter() - started
            if res.error is not None or res.logits is None:
                finish(Probe(probs=None, error=res.error or "no logits", latency_s=elapsed))
                return
            p_all = np.exp(res.logits.astype(np.float64) - float(res.logits.max()))
            p_all /= p_all.sum()
            chosen = p_all[ids]
            mass = float(chosen.sum())
            if not mass > 0:
                finish(Probe(probs=None, error=f"{self.model_id}: no probability mass on the candidates "
                                               f"{request.candidates}", latency_s=elapsed))
                return
            finish(Probe(probs=tuple(float(x) for x in chosen / mass), mass=mass, prompt_tokens=len(full),
                         latency_s=elapsed))

        self.decoder.submit(BatchRequest(prompt=tuple(full), max_tokens=0, logits=True), read, front=front)

    def close(self) -> None:
        self.llm.close()
