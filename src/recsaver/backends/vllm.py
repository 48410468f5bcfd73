"""vLLM (`vllm/...`): GPU serving with prefix caching and internal batching.

vllm is imported only when the in-process engine is made (backends/vllm_engine.py); it needs a CUDA GPU (it
does not import on CPU-only machines here), so a clear `VLLMUnavailableError` is raised where it is
missing. The pure logic (grouping the M samples of one prompt into one ``n=M`` call; reading P(1..5) from
per-token top logprobs) lives in plain functions below and is tested without vllm.

- All requests go to vLLM in one engine run (prompts rendered with the
  tokenizer's chat template, as the hf backend does, and passed as token ids). Requests
  that differ only in `sample_index` share one ``SamplingParams(n=k, seed=...)``; sample i
  is the i-th of the group's sorted sample indices, so a sample is reproducible given the
  same set of sample indices. Greedy groups are run once (n=1) and shared.
- Grammars: vLLM takes no GBNF here; give ``regex_for_grammar={gbnf_text: regex}`` and a
  request whose grammar has an entry is constrained by that regex (vLLM structured
  outputs, or the older guided decoding). Other grammars are ignored (one warning).
- `probe`: vLLM gives no full next-token distribution, only the top logprobs of a generated
  token, so a probe is one greedy 1-token call on prompt + continuation with ``logprobs=20``
  (prefix caching makes it cheap); candidates outside the top 20 count as 0, so `mass` is a
  lower bound, and a probe with no candidate in the top 20 is an error. Candidate ids are
  resolved as they follow the continuation (`hf.prompts.candidate_token_ids`).
- Engines: the logic above runs on one engine contract (`Engine.run`: token-id prompts and SamplingParams
  kwargs in, `Completion`s out, each group reported as it finishes). `InProcessEngine` is `vllm.LLM` in this
  process; `backends/vllm_ray.RayDataEngine` is `ray.data.llm` over a Ray cluster (`--executor ray`).
- `rating_probs`: requests are sampled with ``logprobs=20``; when the answer's last rating
  header is followed by a token, the digits' top-20 logprobs at that position give P(1..5)
  (no extra call). Otherwise (no header, or the answer ends at it) the probe
  `prompts.rating.rating_probe` reads them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..prompts.rating import rating_probe
from .base import Generation, GenerationRequest, OnProbe, OnResult, Probe, ProbeRequest
from .hf import RATING_HEADER, candidate_token_ids, join_messages, rating_digit_ids, weights_identity
from .vllm_engine import TOP_LOGPROBS, Completion, Engine, InProcessEngine, VLLMUnavailableError

log = logging.getLogger(__name__)

# ---- pure logic (no vllm) -------------------------------------------------------------
@dataclass
class SampleGroup:
    """Requests that differ only in `sample_index`: one vLLM call with ``n`` outputs.

    `members` pairs each request index with the output it takes (0..n-1).
    """

    first: int
    n: int
    seed: int
    members: list[tuple[int, int]] = field(default_factory=list)


def _group_key(r: GenerationRequest) -> tuple[Any, ...]:
    return (r.messages, r.prompt_text, r.params, r.grammar, r.rating_probs)


def group_samples(requests: Sequence[GenerationRequest], indices: Sequence[int] | None = None) -> list[SampleGroup]:
    """Group requests (all, or those at `indices`) by everything but `sample_index`.

    Sampled groups get ``n`` = the number of distinct sample indices, output j for the j-th
    smallest, and the seed of the smallest sample index (``GenerationRequest.sample_seed``).
    Greedy groups (temperature 0) get n=1, every member taking output 0. Groups keep first-seen order.
    """
    by_key: dict[tuple[Any, ...], list[int]] = {}
    for i in range(len(requests)) if indices is None else indices:
        by_key.setdefault(_group_key(requests[i]), []).append(i)
    groups = []
    for members in by_key.values():
        first = members[0]
        p = requests[first].params
        samples = sorted({requests[i].sample_index for i in members})
        if p.temperature <= 0:
            groups.append(SampleGroup(first, 1, p.seed, [(i, 0) for i in members]))
            continue
        pos = {s: j for j, s in enumerate(samples)}
        groups.append(SampleGroup(first, len(samples), requests[first].sample_seed(samples[0]),
                                  [(i, pos[requests[i].sample_index]) for i in members]))
    return groups


def digit_distribution(top_logprobs: dict[int, float], digit_ids: Sequence[int]
                       ) -> tuple[tuple[float, ...], float] | None:
    """P(1..5) normalized and the digits' total mass, from one position's top logprobs
    (token id -> logprob); a digit outside them counts as 0. None when no digit is there."""
    probs = [math.exp(top_logprobs[d]) if d in top_logprobs else 0.0 for d in digit_ids]
    mass = sum(probs)
    if not mass > 0:
        return None
    return tuple(p / mass for p in probs), mass


def header_position(token_ids: Sequence[int], decode: Callable[[list[int]], str]) -> int | None:
    """Index of the generated token that follows the answer's last rating header.

    None when the answer has no rating header, its last header is not followed by a newline,
    the header does not end on a token boundary, or nothing follows it.
    """
    ids = list(token_ids)
    full = decode(ids)
    cut = full.rfind(RATING_HEADER.strip())
    if cut < 0 or full[cut: cut + len(RATING_HEADER)] != RATING_HEADER:
        return None
    target = cut + len(RATING_HEADER)
    lo, hi = 0, len(ids)  # smallest t with len(decode(ids[:t])) >= target
    while lo < hi:
        mid = (lo + hi) // 2
        if len(decode(ids[:mid])) >= target:
            hi = mid
        else:
            lo = mid + 1
    prefix = decode(ids[:lo])
    if len(prefix) != target or not prefix.endswith(RATING_HEADER) or lo >= len(ids):
        return None
    return lo


def rating_from_logprobs(token_ids: Sequence[int], top_logprobs: Sequence[dict[int, float] | None],
                         digit_ids: Sequence[int], decode: Callable[[list[int]], str]
                         ) -> tuple[tuple[float, ...], float] | None:
    """P(1..5) read at the token after the answer's last rating header, from the per-token
    top logprobs that came with the sampled tokens; None when that position is not there."""
    t = header_position(token_ids, decode)
    top = top_logprobs[t] if t is not None and t < len(top_logprobs) else None
    return digit_distribution(top, digit_ids) if top is not None else None


# ---- the backend ---------------------------------------------------------------------------
class VLLMBackend:
    def __init__(
        self,
        model: str,
        *,
        context_length: int = 8192,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        enable_prefix_caching: bool = True,
        regex_for_grammar: dict[str, str] | None = None,
        engine: Engine | None = None,
        tokenizer: Any = None,
    ):
        """vLLM in this process, or (`engine`, with the model's `tokenizer` loaded here) an engine elsewhere."""
        self.name = model
        self.context_length = int(context_length)
        self.regex_for_grammar = dict(regex_for_grammar or {})
        if engine is None:
            engine = InProcessEngine(model, self.context_length, tensor_parallel_size, gpu_memory_utilization,
                                     enable_prefix_caching)
            tokenizer = engine.llm.get_tokenizer()
        self.engine: Engine = engine
        self.model_id = f"vllm/{model}@{weights_identity(model)}"
        self.tokenizer = tokenizer
        self._digit_ids = rating_digit_ids(lambda s: self.tokenizer.encode(s, add_special_tokens=False))
        self._warned_grammar = False

    def prompt_tokens(self, request: GenerationRequest | ProbeRequest) -> list[int]:
        tok = self.tokenizer
        if request.prompt_text is not None or not getattr(tok, "chat_template", None):
            return list(tok.encode(join_messages(request), add_special_tokens=True))
        rendered = tok.apply_chat_template(request.message_dicts(), add_generation_prompt=True, tokenize=False)
        return list(tok.encode(rendered, add_special_tokens=False))

    def count_tokens(self, request: GenerationRequest) -> int:
        return len(self.prompt_tokens(request))

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _sampling_kwargs(self, request: GenerationRequest, n: int, seed: int) -> dict[str, Any]:
        p = request.params
        kwargs: dict[str, Any] = dict(n=n, temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens,
                                      seed=seed, stop=list(p.stop) or None,
                                      logprobs=TOP_LOGPROBS if request.rating_probs else None)
        if request.grammar:
            regex = self.regex_for_grammar.get(request.grammar)
            if regex is not None:
                kwargs["structured_outputs"] = {"regex": regex}
            elif not self._warned_grammar:
                self._warned_grammar = True
                log.warning("vllm backend: no regex for a request grammar (regex_for_grammar); output unconstrained")
        return kwargs

    def generate(self, requests: Sequence[GenerationRequest], on_result: OnResult | None = None) -> list[Generation]:
        """Every request in one engine run; each answer is reported the moment its prompt's outputs are back
        (answers still needing the rating probe, after one more run)."""
        started = time.perf_counter()
        results: list[Generation | None] = [None] * len(requests)
        reported: set[int] = set()

        def report(i: int) -> None:
            if on_result and results[i] is not None and i not in reported:
                reported.add(i)
                on_result(i, results[i])  # type: ignore[arg-type]

        prompts: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            try:
                ids = self.prompt_tokens(r)
                if len(ids) + r.params.max_tokens > self.context_length:
                    results[i] = Generation(text=None, prompt_tokens=len(ids), error=(
                        f"prompt of {len(ids)} tokens + max_tokens {r.params.max_tokens} exceeds the context "
                        f"of {self.context_length}"))
                else:
                    prompts[i] = ids
            except Exception as e:
                results[i] = Generation(text=None, error=f"{type(e).__name__}: {e}")
            report(i)
        groups = group_samples(requests, list(prompts))
        needs_readout: list[int] = []

        def done(k: int, outputs: list[Completion] | Exception) -> None:
            group = groups[k]
            if not isinstance(outputs, Exception) and len(outputs) < group.n:
                outputs = ValueError(f"expected {group.n} outputs, got {len(outputs)}")
            elapsed = (time.perf_counter() - started) / max(1, len(requests))
            for i, j in group.members:
                if isinstance(outputs, Exception):
                    results[i] = Generation(text=None, prompt_tokens=len(prompts[i]),
                                            error=f"{type(outputs).__name__}: {outputs}")
                    report(i)
                    continue
                out = outputs[j]
                probs = None
                if requests[i].rating_probs:
                    probs = rating_from_logprobs(out.token_ids, out.logprobs or [], self._digit_ids, self._decode)
                results[i] = Generation(
                    text=out.text, prompt_tokens=len(prompts[i]), completion_tokens=len(out.token_ids),
                    latency_s=elapsed, finish_reason=out.finish_reason,
                    rating_probs=probs[0] if probs else None, digit_mass=probs[1] if probs else None)
                if requests[i].rating_probs and probs is None:
                    needs_readout.append(i)
                else:
                    report(i)

        self.engine.run([prompts[g.first] for g in groups],
                        [self._sampling_kwargs(requests[g.first], g.n, g.seed) for g in groups],
                        [self._output_seeds(requests, g) for g in groups], done)
        if needs_readout:
            self._read_ratings(requests, needs_readout, prompts, results)
        final = [g if g is not None else Generation(text=None, error="not run") for g in results]
        results[:] = final
        for i in range(len(final)):
            report(i)
        return final

    @staticmethod
    def _output_seeds(requests: Sequence[GenerationRequest], group: SampleGroup) -> list[int]:
        """Each output's own seed: that of the sample it becomes (`GenerationRequest.sample_seed`)."""
        seeds = [group.seed] * group.n
        for i, j in group.members:
            if requests[i].params.temperature > 0:
                seeds[j] = requests[i].sample_seed()
        return seeds

    def _read_ratings(self, requests: Sequence[GenerationRequest], indices: list[int], prompts: dict[int, list[int]],
                      results: list[Generation | None]) -> None:
        """The rating probe (`prompts.rating.rating_probe`) of each answer at `indices`, in one engine run."""
        from dataclasses import replace

        answers = {i: g for i in indices if (g := results[i]) is not None}
        rated = self._probe_many([rating_probe(requests[i], g.text or "") for i, g in answers.items()],
                                 [prompts[i] for i in answers])
        errors = [p.error for p in rated if p.error]
        for (i, g), p in zip(answers.items(), rated):
            if p.ok:
                results[i] = replace(g, rating_probs=p.probs, digit_mass=p.mass)
        if errors:  # the answer is kept; only its read-out is missing
            log.warning("vllm backend: %d rating read-out(s) failed, e.g. %s", len(errors), errors[0])

    # ---- probes -------------------------------------------------------------------
    def probe(self, requests: Sequence[ProbeRequest], on_result: OnProbe | None = None) -> list[Probe]:
        """Greedy 1-token calls on prompt + continuation, all in one engine run (see the module doc)."""
        return self._probe_many(requests, on_result=on_result)

    def _probe_many(self, requests: Sequence[ProbeRequest], prompts: Sequence[list[int]] | None = None,
                    on_result: OnProbe | None = None) -> list[Probe]:
        started = time.perf_counter()
        results: list[Probe] = [Probe(probs=None, error="not run")] * len(requests)
        inputs: dict[int, tuple[list[int], list[int]]] = {}  # index -> (prompt + continuation tokens, candidate ids)

        def encode(text: str) -> list[int]:
            return list(self.tokenizer.encode(text, add_special_tokens=False))

        for i, r in enumerate(requests):
            try:
                tail = encode(r.continuation)
                try:
                    ids = candidate_token_ids(encode, r.continuation, r.candidates, base=tail)
                except ValueError as e:
                    raise ValueError(f"{self.model_id}: {e}") from None
                full = (self.prompt_tokens(r) if prompts is None else prompts[i]) + tail
                if len(full) + 1 > self.context_length:
                    raise ValueError(f"prompt + continuation of {len(full)} tokens leaves no room in the context "
                                     f"of {self.context_length}")
                inputs[i] = (full, ids)
            except Exception as e:  # recorded, not raised
                results[i] = Probe(probs=None, error=f"{type(e).__name__}: {e}")
                if on_result:
                    on_result(i, results[i])
        order = list(inputs)

        def done(k: int, outputs: list[Completion] | Exception) -> None:
            i = order[k]
            full, ids = inputs[i]
            elapsed = (time.perf_counter() - started) / len(inputs)
            if isinstance(outputs, Exception):
                results[i] = Probe(probs=None, error=f"{type(outputs).__name__}: {outputs}")
            else:
                lp = outputs[0].logprobs if outputs else None
                dist = digit_distribution(lp[0] or {}, ids) if lp else None
                results[i] = Probe(probs=dist[0], mass=dist[1], prompt_tokens=len(full), latency_s=elapsed) if dist \
                    else Probe(probs=None, prompt_tokens=len(full), latency_s=elapsed, error=(
                        f"{self.model_id}: none of the candidates {requests[i].candidates} is among the top "
                        f"{TOP_LOGPROBS} next tokens (vLLM gives no more)"))
            if on_result:
                on_result(i, results[i])

        greedy = dict(n=1, max_tokens=1, temperature=0.0, logprobs=TOP_LOGPROBS)
        self.engine.run([inputs[i][0] for i in order], [greedy] * len(order), [[0]] * len(order), done)
        return results

    def close(self) -> None:
        self.engine.close()


__all__ = ["TOP_LOGPROBS", "Completion", "Engine", "VLLMBackend", "VLLMUnavailableError", "SampleGroup",
           "digit_distribution", "group_samples", "header_position", "rating_from_logprobs"]
