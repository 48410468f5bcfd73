"""`OpenAIBackend.count_tokens`: the server's tokenizer where it has one, else a character estimate."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import orjson

from ..base import GenerationRequest
from .state import BackendState

log = logging.getLogger(__package__)  # the package's logger, the same name as before the split

CHAT_TEMPLATE_TOKENS_PER_MESSAGE = 4  # role markers a chat template adds around each message (approximate)


class TokenCount(BackendState):
    """`OpenAIBackend` methods that count prompt tokens."""

    def count_tokens(self, request: GenerationRequest) -> int:
        """Prompt tokens, from the server's tokenizer where it has one.

        Tried in turn, and the one that works remembered: llama-cpp-python's
        ``POST /extras/tokenize {"input"}``, llama.cpp server's
        ``POST /tokenize {"content"}``, vLLM's ``POST /tokenize {"model", "prompt"|"messages"}``
        (vLLM applies the chat template itself, so its count is exact). The
        others tokenize the message contents, plus about 4 template tokens per
        message. Without any tokenize endpoint (Ollama, hosted APIs) the count
        is len(text) // 4: about 4 characters a token for English text and BPE
        vocabularies, enough for a context check with some margin, not exact.
        """
        completion_style = request.prompt_text is not None and not request.messages
        text = request.prompt_text if completion_style else "\n".join(c for _, c in request.messages)
        overhead = 0 if completion_style else CHAT_TEMPLATE_TOKENS_PER_MESSAGE * len(request.messages)
        text = text or ""
        counted = self._remote_count(request, text, completion_style)
        if counted is not None:
            n, exact = counted
            return n if exact else n + overhead
        return len(text) // 4 + overhead

    def _remote_count(self, request: GenerationRequest, text: str, completion_style: bool) -> tuple[int, bool] | None:
        if self._tokenize_kind == "none":
            return None
        now = time.monotonic()
        server = next((s for s in self._servers if s.down_until <= now), self._servers[0])
        probes: list[tuple[str, str, dict[str, Any]]] = [
            ("llama-cpp-python", "/extras/tokenize", {"input": text, "model": self.model}),
            ("llama.cpp", "/tokenize", {"content": text}),
            ("vllm", "/tokenize", {"model": self.model, "prompt": text} if completion_style else
             {"model": self.model, "messages": request.message_dicts(), "add_generation_prompt": True}),
        ]
        if self._tokenize_kind is not None:
            probes = [p for p in probes if p[0] == self._tokenize_kind]
        answered = True
        for kind, path, payload in probes:
            try:
                resp = self._client.post(server.root + path, content=orjson.dumps(payload),
                                         timeout=min(self.timeout, 10.0))
            except httpx.HTTPError as e:
                log.debug("tokenize at %s%s failed: %s", server.root, path, e)
                answered = False
                continue
            if resp.status_code != 200:
                continue
            try:
                data = orjson.loads(resp.content)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(data, dict):
                continue
            if isinstance(data.get("count"), int):
                n = data["count"]
            elif isinstance(data.get("tokens"), list):
                n = len(data["tokens"])
            else:
                continue
            self._tokenize_kind = kind
            return n, kind == "vllm" and not completion_style
        if answered and self._tokenize_kind is None:
            self._tokenize_kind = "none"  # every endpoint answered, none tokenizes: stop asking
        return None
