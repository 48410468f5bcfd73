"""llama.cpp through llama-cpp-python: the default engine, CPU-friendly.

Speed comes from prompt reuse: `Llama` keeps the KV cache of the longest prefix
shared with the previous call, so requests are run grouped by prompt (the M
samples of one prompt, and the rating read-out after a reasoning, pay for the
prompt once).

`probe` evaluates prompt tokens + the continuation's tokens (tokenized on its own,
no BOS) with the same prefix reuse and reads the last position's logits: the
candidates' softmax probabilities over the whole vocabulary (float64), their sum
is the mass and normalized they are the probs. Each candidate must be one token.
`generate(rating_probs=True)` reads P(1..5) through the same code
(`prompts.rating.rating_probe`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from ..prompts.rating import rating_probe
from .base import Generation, GenerationRequest, OnProbe, OnResult, Probe, ProbeRequest
from .cpu_share import CoreShare, available_cores


class LlamaCppBackend:
    def __init__(
        self,
        model_path: Path | str,
        *,
        model_id: str,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
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
        self._formatter = self._chat_formatter()
        self._grammars: dict[str, Any] = {}
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

    def _grammar(self, text: str) -> Any:
        from llama_cpp import LlamaGrammar

        if text not in self._grammars:
            self._grammars[text] = LlamaGrammar.from_string(text, verbose=False)
        return self._grammars[text]

    # ---- generation -------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], on_result: OnResult | None = None) -> list[Generation]:
        # Run requests that share a prompt back to back so llama.cpp reuses the evaluated prefix.
        order = sorted(range(len(requests)), key=lambda i: (requests[i].messages, requests[i].prompt_text or "", i))
        results: list[Generation | None] = [None] * len(requests)
        with self.share.active() if self.share else nullcontext():
            self._generate(requests, order, results, on_result)
        return [g if g is not None else Generation(text=None, error="not run") for g in results]

    def _generate(self, requests: Sequence[GenerationRequest], order: list[int], results: list[Generation | None],
                  on_result: OnResult | None) -> None:
        for i in order:
            try:
                g = self._one(requests[i])
            except Exception as e:  # recorded, not raised: one bad call must not end a run
                g = Generation(text=None, error=f"{type(e).__name__}: {e}")
            results[i] = g
            if on_result:
                on_result(i, g)

    def probe(self, requests: Sequence[ProbeRequest], on_result: OnProbe | None = None) -> list[Probe]:
        # Requests that share a prompt run back to back, so the evaluated prefix is reused.
        order = sorted(range(len(requests)), key=lambda i: (requests[i].messages, requests[i].prompt_text or "",
                                                             requests[i].continuation, i))
        results: list[Probe] = [Probe(probs=None, error="not run")] * len(requests)
        with self.share.active() if self.share else nullcontext():
            for i in order:
                started = time.perf_counter()
                try:
                    self._share_cores()
                    p = self._probe_one(requests[i])
                except Exception as e:  # recorded, not raised: one bad call must not end a run
                    p = Probe(probs=None, error=f"{type(e).__name__}: {e}", latency_s=time.perf_counter() - started)
                results[i] = p
                if on_result:
                    on_result(i, p)
        return results

    def _share_cores(self) -> None:
        if self.share is None:
            return
        n = self.share.threads()
        if n != self.n_threads:
            import llama_cpp

            llama_cpp.llama_set_n_threads(self.llm._ctx.ctx, n, n)
            self.n_threads = n

    def _one(self, request: GenerationRequest) -> Generation:
        self._share_cores()
        started = time.perf_counter()
        tokens, stops = self.prompt_tokens(request)
        p = request.params
        if len(tokens) + p.max_tokens > self.context_length:
            return Generation(text=None, error=f"prompt of {len(tokens)} tokens + max_tokens {p.max_tokens} exceeds "
                                               f"the context of {self.context_length}", prompt_tokens=len(tokens))
        out = self.llm.create_completion(
            prompt=tokens,
            max_tokens=p.max_tokens,
            temperature=p.temperature,
            top_p=p.top_p,
            seed=request.sample_seed(),
            stop=list(p.stop) + stops,
            grammar=self._grammar(request.grammar) if request.grammar else None,
        )
        assert isinstance(out, dict)  # not streamed
        choice = out["choices"][0]
        text = choice["text"]
        usage: Any = out.get("usage", {})
        probs, mass = (None, None)
        if request.rating_probs:
            rated = self._probe_one(rating_probe(request, text), tokens)
            probs, mass = rated.probs, rated.mass
        return Generation(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", len(tokens))),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=time.perf_counter() - started,
            finish_reason=choice.get("finish_reason"),
            rating_probs=probs,
            digit_mass=mass,
        )

    # ---- probes -------------------------------------------------------------
    def _probe_one(self, request: ProbeRequest, prompt_tokens: list[int] | None = None) -> Probe:
        """Evaluate prompt + continuation, read the candidates' share of the next-token softmax.

        Raises on failure (`probe` records it; `generate` fails the generation, as it always has).
        `prompt_tokens` skips rendering the prompt again when the caller has its tokens.
        """
        started = time.perf_counter()
        ids = self.candidate_ids(request.candidates)
        if prompt_tokens is None:
            prompt_tokens = self.prompt_tokens(request)[0]
        full = prompt_tokens + self.llm.tokenize(request.continuation.encode("utf-8"), add_bos=False, special=False)
        if len(full) > self.context_length:
            raise ValueError(f"prompt + continuation of {len(full)} tokens exceeds the context of "
                             f"{self.context_length}")
        self._eval_with_prefix_reuse(full)
        import llama_cpp

        ptr = llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(self.llm.n_vocab(),)).astype(np.float64)
        logits -= logits.max()
        p_all = np.exp(logits)
        p_all /= p_all.sum()
        chosen = p_all[ids]
        mass = float(chosen.sum())
        if not mass > 0:
            raise ValueError(f"{self.model_id}: no probability mass on the candidates {request.candidates}")
        return Probe(probs=tuple(float(x) for x in chosen / mass), mass=mass, prompt_tokens=len(full),
                     latency_s=time.perf_counter() - started)

    def _eval_with_prefix_reuse(self, tokens: list[int]) -> None:
        current = self.llm.input_ids[: self.llm.n_tokens]
        prefix = 0
        for a, b in zip(current, tokens):
            if a != b:
                break
            prefix += 1
        prefix = min(prefix, len(tokens) - 1)  # evaluate at least one token to get fresh logits
        self.llm.n_tokens = prefix
        self.llm.eval(tokens[prefix:])

    def close(self) -> None:
        self.llm.close()
