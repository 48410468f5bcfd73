"""`OpenAIBackend`: construction and the `generate` fan-out; its other methods come from the mixins."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import httpx

from ..base import Generation, GenerationRequest, OnResult
from .bodies import RequestBodies
from .logprobs import _chat_logprob_tokens, _completion_logprob_tokens, rating_from_logprobs
from .retries import Retries
from .servers import ServerChoice, _normalize_url, _root_of, _Server
from .tokens import TokenCount

BALANCES = ("round-robin", "least-busy")
CONSTRAINT_STYLES = ("gbnf", "vllm-regex", "json-schema", None)


class OpenAIBackend(ServerChoice, RequestBodies, Retries, TokenCount):
    """Backend over one or more OpenAI-compatible servers (see the package docstring).

    `model_id` is ``openai/<model>``, plus ``@<served id>`` when GET /v1/models
    reports the model under another id (llama.cpp serves its file name, for
    instance). The cache key therefore trusts that every server of a fleet
    serves the same weights under that name; give `model_id` explicitly to
    pin something stricter. When no server answers /v1/models at construction
    the id is plain ``openai/<model>`` (a cache miss later, never a wrong hit
    for the same weights). A reported ``max_model_len`` (vLLM) lowers
    `context_length`.
    """

    def __init__(
        self,
        model: str,
        base_urls: list[str] | tuple[str, ...] | str,
        *,
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 4,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        context_length: int = 8192,
        balance: str = "round-robin",
        constraint_style: str | None = "gbnf",
        down_cooldown: float = 30.0,
        model_id: str | None = None,
    ):
        if isinstance(base_urls, str):
            base_urls = [base_urls]
        urls = [_normalize_url(u) for u in base_urls]
        if not urls:
            raise ValueError("OpenAIBackend needs at least one base URL")
        if balance not in BALANCES:
            raise ValueError(f"balance must be one of {BALANCES}, got {balance!r}")
        if constraint_style not in CONSTRAINT_STYLES:
            raise ValueError(f"constraint_style must be one of {CONSTRAINT_STYLES}, got {constraint_style!r}")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")

        self.model = model
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.balance = balance
        self.constraint_style = constraint_style
        self.down_cooldown = float(down_cooldown)
        self.concurrency = int(concurrency)

        self._servers = [_Server(url=u, root=_root_of(u)) for u in urls]
        self._lock = threading.Lock()
        self._rr = 0
        self._rng = random.Random()
        self._warned_constraint = False
        self._tokenize_kind: str | None = None  # which tokenize endpoint works; "none" when none does

        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        api_key = os.environ.get(api_key_env) if api_key_env else None
        if api_key:  # local servers usually need none
            headers["Authorization"] = f"Bearer {api_key}"
        # httpx's read timeout is per read; a non-streamed completion arrives in one piece after generation,
        # so it bounds the whole generation time in practice.
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            limits=httpx.Limits(max_connections=self.concurrency + 4,
                                max_keepalive_connections=self.concurrency + 4),
        )
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai-compat")

        self.context_length = int(context_length)
        served, max_len = self._probe_models()
        if max_len:
            self.context_length = min(self.context_length, max_len)
        if model_id is not None:
            self.model_id = model_id
        elif served and served != model:
            self.model_id = f"openai/{model}@{served}"
        else:
            self.model_id = f"openai/{model}"

    def _generation(self, request: GenerationRequest, path: str, data: dict[str, Any], latency: float) -> Generation:
        choice = data["choices"][0]
        if path == "/completions":
            text = choice.get("text")
        else:
            text = (choice.get("message") or {}).get("content")
        usage = data.get("usage") or {}
        probs, mass = None, None
        if request.rating_probs:
            tokens = (_completion_logprob_tokens(choice.get("logprobs")) if path == "/completions"
                      else _chat_logprob_tokens(choice.get("logprobs")))
            probs, mass = rating_from_logprobs(tokens)
        return Generation(
            text=text if isinstance(text, str) else "",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_s=latency,  # the whole call, retries and back-off included
            finish_reason=choice.get("finish_reason"),
            rating_probs=probs,
            digit_mass=mass,
        )

    # ---- Backend protocol ------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], on_result: OnResult | None = None) -> list[Generation]:
        """One Generation per request, in order. At most `concurrency` calls are in flight (shared by all
        callers of this backend). `on_result` runs in the calling thread as each request finishes; if it
        raises (or the caller is interrupted), the requests not yet sent are cancelled and the error propagates."""
        results: list[Generation | None] = [None] * len(requests)
        if not requests:
            return []
        cancel = threading.Event()
        futures = {self._pool.submit(self._run_safe, r, cancel): i for i, r in enumerate(requests)}
        try:
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                if on_result is not None:
                    on_result(i, results[i])  # type: ignore[arg-type]
        except BaseException:
            cancel.set()
            for fut in futures:
                fut.cancel()
            raise
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
