"""Request bodies of an `OpenAIBackend`: sampling parameters, prompt or messages, constraints."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ..base import GenerationRequest
from .logprobs import TOP_LOGPROBS

log = logging.getLogger(__package__)  # the package's logger, the same name as before the split


class RequestBodies:
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
