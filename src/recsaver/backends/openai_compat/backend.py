"""`OpenAIBackend`: construction and the `generate` / `probe` fan-out; its other methods come from the mixins."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ..base import Generation, GenerationRequest, OnProbe, OnResult, Probe, ProbeRequest
from .batch import BatchRuns, default_batch_dir
from .bodies import CHAT_PROBE_STYLES
from .logprobs import (
    TOP_LOGPROBS,
    _chat_logprob_tokens,
    _completion_logprob_tokens,
    candidate_distribution,
    rating_from_logprobs,
)
from .servers import _normalize_url, _root_of, _Server
from .tokens import TokenCount

log = logging.getLogger(__package__)  # the package's logger, the same name as before the split

BALANCES = ("round-robin", "least-busy")
CONSTRAINT_STYLES = ("gbnf", "vllm-regex", "json-schema", None)
R = TypeVar("R")


class OpenAIBackend(BatchRuns, TokenCount):
    """Backend over one or more OpenAI-compatible servers (see the package docstring).

    `model_id` is ``openai/<model>``, plus ``@<served id>`` when GET /v1/models
    reports the model under another id (llama.cpp serves its file name, for
    instance). The cache key therefore trusts that every server of a fleet
    serves the same weights under that name; give `model_id` explicitly to
    pin something stricter. When no server answers /v1/models at construction
    the id is plain ``openai/<model>`` (a cache miss later, never a wrong hit
    for the same weights). A reported ``max_model_len`` (vLLM) lowers
    `context_length`.

    `batch=True` runs `generate` through the OpenAI Batch API (batch.py): records of submitted
    batches live in `batch_dir` (default beside the default cache), polls start after `batch_poll_s`
    and double up to `batch_poll_max_s` (None: ``RECSAVER_BATCH_POLL_S`` / ``RECSAVER_BATCH_POLL_MAX_S``,
    else 5 and 300 s), and failed lines get at most `batch_followups` follow-up batches.
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
        chat_probe: str | None = None,
        batch: bool = False,
        batch_dir: str | os.PathLike[str] | None = None,
        batch_poll_s: float | None = None,
        batch_poll_max_s: float | None = None,
        batch_followups: int = 2,
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
        if chat_probe not in CHAT_PROBE_STYLES:
            raise ValueError(f"chat_probe must be one of {CHAT_PROBE_STYLES}, got {chat_probe!r}")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if batch_followups < 0:
            raise ValueError("batch_followups must be >= 0")

        self.model = model
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.balance = balance
        self.constraint_style = constraint_style
        self.chat_probe = chat_probe
        self.down_cooldown = float(down_cooldown)
        self.concurrency = int(concurrency)
        self.batch = bool(batch)
        self.batch_dir = Path(batch_dir) if batch_dir is not None else default_batch_dir()
        self.batch_poll_s = float(batch_poll_s if batch_poll_s is not None
                                  else os.environ.get("RECSAVER_BATCH_POLL_S") or 5.0)
        self.batch_poll_max_s = max(self.batch_poll_s, float(
            batch_poll_max_s if batch_poll_max_s is not None else os.environ.get("RECSAVER_BATCH_POLL_MAX_S") or 300.0))
        self.batch_followups = int(batch_followups)

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
        thinking = None
        if path == "/completions":
            text = choice.get("text")
        else:
            message = choice.get("message") or {}
            text = message.get("content")
            # reasoning models on vLLM / DeepSeek / llama.cpp return their thinking beside the content
            thinking = message.get("reasoning_content") or message.get("reasoning")
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
            thinking=thinking if isinstance(thinking, str) and thinking.strip() else None,
        )

    def _probe_result(self, request: ProbeRequest, path: str, data: dict[str, Any], latency: float) -> Probe:
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        tokens = (_completion_logprob_tokens(choice.get("logprobs")) if path == "/completions"
                  else _chat_logprob_tokens(choice.get("logprobs")))
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        if not tokens or not tokens[0][1]:
            return Probe(probs=None, prompt_tokens=prompt_tokens, latency_s=latency, error=(
                f"{self.model_id}: the server returned no top logprobs for the next token, so the probe "
                "cannot be read (it does not support logprobs)"))
        found = candidate_distribution(tokens[0][1], request.candidates)
        if found is None:
            return Probe(probs=None, prompt_tokens=prompt_tokens, latency_s=latency, error=(
                f"{self.model_id}: none of the candidates {request.candidates} is among the top "
                f"{TOP_LOGPROBS} next tokens the server returned"))
        return Probe(probs=found[0], mass=found[1], prompt_tokens=prompt_tokens, latency_s=latency)

    # ---- one request ------------------------------------------------------------------
    def _run(self, request: GenerationRequest, cancel: threading.Event) -> Generation:
        started = time.perf_counter()
        try:
            path, body = self._body(request)
        except ValueError as e:
            return Generation(text=None, error=f"not sent: {e}")
        out = self._exchange(path, body, cancel)
        if isinstance(out, str):
            return Generation(text=None, error=out, latency_s=time.perf_counter() - started)
        return self._generation(request, path, out, time.perf_counter() - started)

    def _run_safe(self, request: GenerationRequest, cancel: threading.Event) -> Generation:
        try:
            return self._run(request, cancel)
        except Exception as e:  # recorded, not raised: one bad call must not end a run
            log.exception("unexpected error in an OpenAI-compatible request")
            return Generation(text=None, error=f"{type(e).__name__}: {e}")

    def _run_probe(self, request: ProbeRequest, cancel: threading.Event) -> Probe:
        started = time.perf_counter()
        try:
            path, body = self._probe_body(request)
        except ValueError as e:
            return Probe(probs=None, error=f"not sent: {e}")
        try:
            out = self._exchange(path, body, cancel)
            if isinstance(out, str):
                return Probe(probs=None, error=out, latency_s=time.perf_counter() - started)
            return self._probe_result(request, path, out, time.perf_counter() - started)
        except Exception as e:  # recorded, not raised
            log.exception("unexpected error in an OpenAI-compatible probe")
            return Probe(probs=None, error=f"{type(e).__name__}: {e}", latency_s=time.perf_counter() - started)

    def _fan_out(self, run: Callable[[Any, threading.Event], R], requests: Sequence[Any],
                 on_result: Callable[[int, R], None] | None) -> list[R]:
        """`run` each request on the pool; results in order, `on_result` in the calling thread as each finishes."""
        results: dict[int, R] = {}
        if not requests:
            return []
        cancel = threading.Event()
        futures = {self._pool.submit(run, r, cancel): i for i, r in enumerate(requests)}
        try:
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                if on_result is not None:
                    on_result(i, results[i])
        except BaseException:
            cancel.set()
            for fut in futures:
                fut.cancel()
            raise
        return [results[i] for i in range(len(requests))]

    # ---- Backend protocol ------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], on_result: OnResult | None = None) -> list[Generation]:
        """One Generation per request, in order. At most `concurrency` calls are in flight (shared by all
        callers of this backend). `on_result` runs in the calling thread as each request finishes; if it
        raises (or the caller is interrupted), the requests not yet sent are cancelled and the error propagates.
        With `batch`, the requests go through the OpenAI Batch API instead (batch.py); probes do not."""
        if self.batch:
            return self._batch_generate(requests, on_result)
        return self._fan_out(self._run_safe, requests, on_result)

    def probe(self, requests: Sequence[ProbeRequest], on_result: OnProbe | None = None) -> list[Probe]:
        """One Probe per request, in order, fanned out like `generate`: one greedy token with its top
        logprobs after prompt + continuation (see `_probe_body` for chat requests)."""
        return self._fan_out(self._run_probe, requests, on_result)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
