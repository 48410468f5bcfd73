"""Request bodies of an `OpenAIBackend`: sampling parameters, prompt or messages, constraints, probes."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ..base import GenerationRequest, ProbeRequest
from .logprobs import TOP_LOGPROBS
from .state import BackendState

log = logging.getLogger(__package__)  # the package's logger, the same name as before the split

CHAT_PROBE_STYLES = ("continue_final_message", "prefill", None)


class RequestBodies(BackendState):
    """`OpenAIBackend` methods that turn a `GenerationRequest` into (path, JSON body)."""

    # ---- request bodies ------------------------------------------------------
    def _body(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        p = request.params
        completion_style = request.prompt_text is not None and not request.messages
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "max_tokens": p.max_tokens,
            # One seed per sample, as the llama.cpp backend does, so the M samples of a prompt differ.
            "seed": request.sample_seed(),
            "n": 1,
            "stream": False,
        }
        if p.stop:
            body["stop"] = list(p.stop)
        if completion_style:
            path = "/completions"
            body["prompt"] = request.prompt_text
            if request.rating_probs:
                body["logprobs"] = TOP_LOGPROBS
        else:
            path = "/chat/completions"
            body["messages"] = request.message_dicts()
            if request.rating_probs:
                body["logprobs"] = True
                body["top_logprobs"] = TOP_LOGPROBS
        if request.grammar:
            self._add_constraint(body, request.grammar)
        return path, body

    def _probe_body(self, request: ProbeRequest) -> tuple[str, dict[str, Any]]:
        """One greedy token after prompt + continuation, with the top logprobs of that token.

        A completion-style request (prompt_text, no messages) sends prompt_text + continuation to
        /completions. A chat request needs the server to continue the assistant message that holds the
        continuation, which the OpenAI API has no standard way to ask (`chat_probe` says how); without
        one it raises ValueError (recorded as the probe's error).
        """
        body: dict[str, Any] = {"model": self.model, "temperature": 0.0, "max_tokens": 1, "n": 1, "stream": False}
        if request.prompt_text is not None and not request.messages:
            body["prompt"] = request.prompt_text + request.continuation
            body["logprobs"] = TOP_LOGPROBS
            return "/completions", body
        if self.chat_probe is None:
            raise ValueError(
                f"{self.model_id}: a chat probe needs the server to continue an assistant message, and the "
                "OpenAI API has no standard way to ask; set chat_probe='continue_final_message' (vLLM) or "
                "'prefill' (llama.cpp server, which continues a trailing assistant message), or probe a "
                "completion-style request (prompt_text, no messages)")
        body["messages"] = request.message_dicts() + [{"role": "assistant", "content": request.continuation}]
        if self.chat_probe == "continue_final_message":
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        body["logprobs"] = True
        body["top_logprobs"] = TOP_LOGPROBS
        return "/chat/completions", body

    def _add_constraint(self, body: dict[str, Any], grammar: str) -> None:
        style = self.constraint_style
        if style == "gbnf":
            body["grammar"] = grammar
        elif style == "vllm-regex":
            body["guided_regex"] = grammar
        elif style == "json-schema":
            try:
                schema = orjson.loads(grammar)
            except orjson.JSONDecodeError as e:
                raise ValueError(f"constraint_style json-schema needs a JSON schema in grammar: {e}") from e
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": schema, "strict": True}}
        elif not self._warned_constraint:
            self._warned_constraint = True
            log.warning("constraint_style=None: request grammars are not sent; output is unconstrained")
