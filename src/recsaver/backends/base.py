"""The narrow interface every engine implements (after lm-evaluation-harness).

Two calls, as lm-eval has `generate_until` beside `loglikelihood`:

- `generate(requests)`: one `Generation` per `GenerationRequest`, in order.
- `probe(requests)`: one `Probe` per `ProbeRequest`, in order: the next-token
  probabilities of a few candidate strings (e.g. the rating digits) after a
  prompt and a given continuation (the assistant's text so far). The text of a
  continuation is built in `prompts/` (`prompts.rating.rating_probe`); backends
  hold no prompt text of their own.

Batching, prefix reuse and concurrency live inside the backend; a failure of one
request is recorded in its `Generation.error` / `Probe.error`, never raised, so a
long run is not lost to one bad call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import orjson

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int = 0
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                "seed": self.seed, "stop": list(self.stop)}


@dataclass(frozen=True)
class GenerationRequest:
    """One model call. `key()` hashes exactly what changes the output.

    `sample_index` separates the M samples drawn for one prompt, so a cached
    sample is never reused as a different sample. `grammar` is a GBNF grammar
    (llama.cpp) or a regex/JSON-schema constraint the backend translates.
    `rating_probs` asks the backend to read P(1..5) after the answer, with the
    probe `prompts.rating.rating_probe(request, answer)` (the answer cut at its
    rating header + the header; candidates "1".."5"), where the engine exposes
    next-token probabilities.
    """

    messages: tuple[tuple[str, str], ...]
    params: SamplingParams = field(default_factory=SamplingParams)
    sample_index: int = 0
    grammar: str | None = None
    rating_probs: bool = False
    prompt_text: str | None = None  # completion-style prompt for models without a chat template
    tag: str = ""  # free text for logs (e.g. example id); not part of the key

    @staticmethod
    def from_messages(messages: Sequence[Message], **kwargs: Any) -> GenerationRequest:
        return GenerationRequest(messages=tuple((m["role"], m["content"]) for m in messages), **kwargs)

    def message_dicts(self) -> list[Message]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def key(self, model_id: str) -> str:
        payload = {
            "model": model_id,
            "messages": self.messages,
            "prompt_text": self.prompt_text,
            "params": self.params.to_dict(),
            "sample_index": self.sample_index,
            "grammar": self.grammar,
            "rating_probs": self.rating_probs,
        }
        return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def with_sample(self, index: int) -> GenerationRequest:
        return replace(self, sample_index=index)

    def sample_seed(self, sample_index: int | None = None) -> int:
        """The engine seed of this sample (or of `sample_index`): one derivation for every backend.

        Distinct per sample so the M samples of one prompt differ; below 2**31 so every engine
        (llama.cpp, torch, vLLM, OpenAI-compatible servers) takes it as it is.
        """
        index = self.sample_index if sample_index is None else sample_index
        return (self.params.seed * 1_000_003 + index) % (2**31)


@dataclass(frozen=True)
class Generation:
    text: str | None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str | None = None
    rating_probs: tuple[float, ...] | None = None  # P(1..5) after the rating header, normalized
    digit_mass: float | None = None  # share of next-token mass on the 5 digits before normalizing
    cached: bool = False
    # A reasoning model's thinking that the server returned apart from `text` (`reasoning_content`);
    # written only when set, so entries of other models stay byte-identical.
    thinking: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text, "error": self.error, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "latency_s": self.latency_s,
            "finish_reason": self.finish_reason,
            "rating_probs": list(self.rating_probs) if self.rating_probs is not None else None,
            "digit_mass": self.digit_mass,
            **({"thinking": self.thinking} if self.thinking is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], cached: bool = False) -> Generation:
        probs = d.get("rating_probs")
        return cls(
            text=d.get("text"), error=d.get("error"), prompt_tokens=int(d.get("prompt_tokens") or 0),
            completion_tokens=int(d.get("completion_tokens") or 0), latency_s=float(d.get("latency_s") or 0.0),
            finish_reason=d.get("finish_reason"),
            rating_probs=tuple(probs) if probs is not None else None, digit_mass=d.get("digit_mass"),
            cached=cached, thinking=d.get("thinking"),
        )


OnResult = Callable[[int, Generation], None]  # (request index, generation) as each one finishes


@dataclass(frozen=True)
class ProbeRequest:
    """Next-token probabilities of `candidates` after the prompt and `continuation`.

    The prompt is given as a `GenerationRequest`'s is (`messages`, or `prompt_text` for a
    completion-style prompt) and rendered the same way (chat template with the generation
    prompt); `continuation` is appended after the rendered prompt (the assistant's text so
    far, e.g. an answer cut at its rating header + the header). Each candidate must be one
    token of the model (e.g. the digits "1".."5"). `key()` hashes exactly what changes the
    output; `tag` is free text for logs.
    """

    messages: tuple[tuple[str, str], ...]
    continuation: str
    candidates: tuple[str, ...]
    prompt_text: str | None = None
    tag: str = ""

    @staticmethod
    def from_request(request: GenerationRequest, continuation: str, candidates: Sequence[str]) -> ProbeRequest:
        """The probe after `request`'s prompt (its messages / prompt_text and tag) + `continuation`."""
        return ProbeRequest(messages=request.messages, continuation=continuation, candidates=tuple(candidates),
                            prompt_text=request.prompt_text, tag=request.tag)

    def message_dicts(self) -> list[Message]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def key(self, model_id: str) -> str:
        payload = {
            "kind": "probe",
            "model": model_id,
            "messages": self.messages,
            "prompt_text": self.prompt_text,
            "continuation": self.continuation,
            "candidates": self.candidates,
        }
        return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class Probe:
    """The answer to a `ProbeRequest`: `probs[i]` is P(candidates[i]) normalized over the candidates,
    `mass` the share of the whole next-token distribution on them before normalizing."""

    probs: tuple[float, ...] | None
    mass: float | None = None
    error: str | None = None
    prompt_tokens: int = 0  # prompt + continuation tokens evaluated (as the engine reports them)
    latency_s: float = 0.0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.probs is not None

    def to_dict(self) -> dict[str, Any]:
        return {"probs": list(self.probs) if self.probs is not None else None, "mass": self.mass,
                "error": self.error, "prompt_tokens": self.prompt_tokens, "latency_s": self.latency_s}

    @classmethod
    def from_dict(cls, d: dict[str, Any], cached: bool = False) -> Probe:
        probs = d.get("probs")
        mass = d.get("mass")
        return cls(probs=tuple(float(p) for p in probs) if probs is not None else None,
                   mass=float(mass) if mass is not None else None, error=d.get("error"),
                   prompt_tokens=int(d.get("prompt_tokens") or 0), latency_s=float(d.get("latency_s") or 0.0),
                   cached=cached)


OnProbe = Callable[[int, Probe], None]  # (request index, probe) as each one finishes


@runtime_checkable
class Backend(Protocol):
    """An engine. `model_id` names the weights exactly (it includes a file hash where there is a file)."""

    model_id: str
    context_length: int

    def generate(self, requests: Sequence[GenerationRequest], on_result: OnResult | None = None) -> list[Generation]:
        """One Generation per request, in order; errors recorded, not raised."""
        ...

    def probe(self, requests: Sequence[ProbeRequest], on_result: OnProbe | None = None) -> list[Probe]:
        """One Probe per request, in order: next-token probabilities of the candidates after
        prompt + continuation; errors (a candidate of several tokens, no logprobs) recorded, not raised."""
        ...

    def count_tokens(self, request: GenerationRequest) -> int:
        """Prompt tokens of a request as this model sees them (for the context check)."""
        ...

    def close(self) -> None: ...
