"""Any OpenAI-compatible HTTP server: vLLM serve, llama.cpp server, llama-cpp-python server, Ollama, hosted APIs.

Why plain `httpx` and not the `openai` package: the SDK has its own retry loop,
its own timeouts and its own idea of which errors are worth retrying, and it
hides a truncated or invalid body behind exceptions of its own. A long rating
run needs one retry policy that we can read and test end to end (exponential
backoff with full jitter, `Retry-After`, fail-over between servers, a failed
request recorded and never raised), so the HTTP calls are made here, with a
synchronous `httpx.Client` shared by a bounded `ThreadPoolExecutor`.

Base URLs are given the OpenAI way, ending in `/v1` (``http://host:8000/v1``);
a bare ``http://host:port`` gets ``/v1`` appended. Chat requests go to
``{base}/chat/completions``; a request with `prompt_text` and no messages goes
to ``{base}/completions``.

What is retried (up to `max_retries` times after the first try, exponential
backoff with full jitter, capped by `backoff_max`): connection errors,
timeouts, HTTP 408, 429 and 5xx (429/503 wait `Retry-After`, seconds or an
HTTP date, capped by `backoff_max`), and a truncated or invalid JSON body.
Other 4xx fail at once. A request that still fails is returned as
``Generation(text=None, error="...")`` naming the status and the last error.

Several base URLs: requests are spread over them (``round-robin`` or
``least-busy`` = fewest requests in flight). A server that refuses the
connection (or cannot be reached in time) is marked down for `down_cooldown`
seconds and the request moves at once to another server, without spending one
of its retries, so the others carry on and nothing is lost.

Constrained decoding (`request.grammar`), by `constraint_style`:

- ``"gbnf"`` (default): ``body["grammar"]`` = the GBNF text (llama.cpp server,
  llama-cpp-python server).
- ``"vllm-regex"``: ``body["guided_regex"]`` = the request's `grammar` text,
  read as a regular expression (vLLM's guided decoding; newer vLLM also takes
  ``structured_outputs``). `GenerationRequest` has no separate regex field yet,
  so the regex is carried in `grammar` for now.
- ``"json-schema"``: the `grammar` text is a JSON schema, sent the standard
  OpenAI way as ``response_format={"type": "json_schema", ...}``.
- ``None``: the server takes no constraint; it is not sent (warned once) and
  the output is unconstrained.

`rating_probs`: an OpenAI-compatible server exposes P(1..5) only through the
``top_logprobs`` of the generated tokens, so such a request asks for
``logprobs: true, top_logprobs: 20`` (``logprobs: 20`` on /completions) and
reads the token that follows the *last* ``### Rating ###`` header in the
answer: the top-20 entries whose stripped text is one of "1".."5" are
exponentiated, their sum is `digit_mass`, and normalized they are
`rating_probs`. Unlike the in-process llama.cpp backend the header cannot be
appended after the fact, so when the answer has no header (or the digit's
alternatives are not among the top 20) `rating_probs` stays None. A server
that refuses logprobs answers 400, and the request fails loudly.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import urlsplit

import httpx
import orjson

from .base import Generation, GenerationRequest, OnResult

log = logging.getLogger(__name__)

RATING_HEADER = "### Rating ###"
DIGITS = ("1", "2", "3", "4", "5")
TOP_LOGPROBS = 20
BALANCES = ("round-robin", "least-busy")
CONSTRAINT_STYLES = ("gbnf", "vllm-regex", "json-schema", None)
RETRYABLE_STATUS = frozenset({408, 429})  # and every 5xx
CHAT_TEMPLATE_TOKENS_PER_MESSAGE = 4  # role markers a chat template adds around each message (approximate)


@dataclass
class _Server:
    url: str  # base URL, ending in /v1
    root: str  # the same without /v1: where the tokenize extras live
    in_flight: int = 0
    down_until: float = 0.0  # time.monotonic() until which it is skipped
    served: int = 0  # successful responses
    failures: int = 0  # failed attempts of any kind


@dataclass
class _Failure:
    message: str
    retryable: bool
    unreachable: bool = False  # the connection could not be made: mark the server down, fail over
    retry_after: float | None = None


def _normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url:
        raise ValueError("empty base URL")
    if urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url


def _root_of(url: str) -> str:
    return url[: -len("/v1")] if url.endswith("/v1") else url


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        import datetime as _dt

        when = when.replace(tzinfo=_dt.timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def rating_from_logprobs(tokens: Sequence[tuple[str, Sequence[tuple[str, float]]]]
                         ) -> tuple[tuple[float, ...] | None, float | None]:
    """P(1..5) at the token after the last rating header.

    `tokens` is the generated text as (token, [(alternative, logprob), ...]).
    Whitespace between the header and the answer is skipped; a token that
    merges the header with the answer gives no clean distribution (None).
    """
    text = "".join(tok for tok, _ in tokens)
    cut = text.rfind(RATING_HEADER)
    if cut < 0:
        return None, None
    end = cut + len(RATING_HEADER)
    pos = 0
    for tok, alternatives in tokens:
        start, pos = pos, pos + len(tok)
        if pos <= end:
            continue
        rest = tok[max(0, end - start):]
        if not rest.strip():
            continue  # the newline after the header
        if start < end:
            return None, None
        mass = dict.fromkeys(DIGITS, 0.0)
        for alt, logprob in alternatives:
            digit = (alt or "").strip()
            if digit in mass and logprob is not None and math.isfinite(logprob):
                mass[digit] += math.exp(logprob)
        total = sum(mass.values())
        if total <= 0.0:
            return None, None
        return tuple(mass[d] / total for d in DIGITS), total
    return None, None


def _chat_logprob_tokens(logprobs: Any) -> list[tuple[str, list[tuple[str, float]]]]:
    """Chat format: {"content": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]}."""
    content = (logprobs or {}).get("content") or []
    return [(str(t.get("token") or ""), [(str(a.get("token") or ""), a.get("logprob"))
                                         for a in (t.get("top_logprobs") or [])]) for t in content]


def _completion_logprob_tokens(logprobs: Any) -> list[tuple[str, list[tuple[str, float]]]]:
    """Legacy completions format: {"tokens": [...], "top_logprobs": [{token: logprob}, ...]}."""
    logprobs = logprobs or {}
    tokens = logprobs.get("tokens") or []
    tops = logprobs.get("top_logprobs") or []
    out = []
    for i, tok in enumerate(tokens):
        top = tops[i] if i < len(tops) and tops[i] else {}
        out.append((str(tok or ""), list(top.items())))
    return out


class OpenAIBackend:
    """Backend over one or more OpenAI-compatible servers (see the module docstring).

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

    # ---- construction-time probe -------------------------------------------
    def _probe_models(self) -> tuple[str | None, int | None]:
        """(served id, max_model_len) from the first server that answers GET /v1/models."""
        for server in self._servers:
            try:
                resp = self._client.get(f"{server.url}/models", timeout=min(self.timeout, 5.0))
                if resp.status_code != 200:
                    continue
                data = orjson.loads(resp.content).get("data") or []
            except (httpx.HTTPError, orjson.JSONDecodeError, AttributeError) as e:
                log.debug("GET %s/models failed: %s", server.url, e)
                continue
            entries = [e for e in data if isinstance(e, dict) and e.get("id")]
            match = next((e for e in entries if e["id"] == self.model), None)
            if match is None and len(entries) == 1:
                match = entries[0]  # a one-model server (llama.cpp) serves it whatever the name asked
            if match is None:
                return None, None
            served = str(match["id"])
            if served.endswith((".gguf", ".bin", ".safetensors")):
                served = served.replace("\\", "/").rsplit("/", 1)[-1]  # a file path differs per machine
            max_len = match.get("max_model_len")
            return served, int(max_len) if isinstance(max_len, int) and max_len > 0 else None
        log.warning("no server of %s answered GET /v1/models; model_id is plain openai/%s",
                    [s.url for s in self._servers], self.model)
        return None, None

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
            "seed": (p.seed * 1_000_003 + request.sample_index) % (2**31),
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

    # ---- server choice -------------------------------------------------------
    def _pick(self, exclude: set[str]) -> _Server:
        now = time.monotonic()
        with self._lock:
            candidates = [s for s in self._servers if s.url not in exclude] or list(self._servers)
            up = [s for s in candidates if s.down_until <= now]
            if not up:  # all down: try the one whose cool-down ends first
                up = [min(candidates, key=lambda s: s.down_until)]
            n = len(self._servers)
            start = self._rr
            if self.balance == "least-busy":
                # fewest in flight; ties go round the ring so idle servers share the load
                server = min(up, key=lambda s: (s.in_flight, (self._servers.index(s) - start) % n))
            else:
                server = next(self._servers[(start + k) % n] for k in range(n)
                              if self._servers[(start + k) % n] in up)
            self._rr = (self._servers.index(server) + 1) % n
            server.in_flight += 1
            return server

    def _release(self, server: _Server, ok: bool) -> None:
        with self._lock:
            server.in_flight -= 1
            if ok:
                server.served += 1
            else:
                server.failures += 1

    def _mark_down(self, server: _Server) -> None:
        with self._lock:
            was_up = server.down_until <= time.monotonic()
            server.down_until = time.monotonic() + self.down_cooldown
        if was_up and len(self._servers) > 1:
            log.warning("%s unreachable: marked down for %.0f s, its requests go to the other servers",
                        server.url, self.down_cooldown)

    def _other_up(self, server: _Server) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(s is not server and s.down_until <= now for s in self._servers)

    def server_stats(self) -> list[dict[str, Any]]:
        """Per server: url, in_flight, served, failures, down (for logs and tests)."""
        now = time.monotonic()
        with self._lock:
            return [{"url": s.url, "in_flight": s.in_flight, "served": s.served, "failures": s.failures,
                     "down": s.down_until > now} for s in self._servers]

    # ---- one HTTP attempt ------------------------------------------------------
    def _attempt(self, server: _Server, path: str, body: dict[str, Any]) -> dict[str, Any] | _Failure:
        url = server.url + path
        try:
            resp = self._client.post(url, content=orjson.dumps(body))
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            return _Failure(f"cannot connect to {url}: {type(e).__name__}: {e}", retryable=True, unreachable=True)
        except httpx.TimeoutException as e:
            return _Failure(f"timeout after {self.timeout:g} s from {url}: {type(e).__name__}", retryable=True)
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as e:
            return _Failure(f"bad request to {url}: {type(e).__name__}: {e}", retryable=False)
        except httpx.RemoteProtocolError as e:  # includes a body cut short of its Content-Length
            return _Failure(f"broken or truncated response from {url}: {e}", retryable=True)
        except httpx.HTTPError as e:  # connection reset, read/write errors
            return _Failure(f"transport error from {url}: {type(e).__name__}: {e}", retryable=True)

        status = resp.status_code
        if status >= 400 or status < 200:
            retryable = status in RETRYABLE_STATUS or status >= 500
            retry_after = parse_retry_after(resp.headers.get("Retry-After")) if status in (429, 503) else None
            return _Failure(f"HTTP {status} from {url}: {_snippet(resp.text)}", retryable=retryable,
                            retry_after=retry_after)
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError as e:
            return _Failure(f"invalid JSON body (HTTP {status}, {len(resp.content)} bytes) from {url}: {e}",
                            retryable=True)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices or not isinstance(choices[0], dict):
            return _Failure(f"response without choices (HTTP {status}) from {url}: {_snippet(resp.text)}",
                            retryable=True)
        return data

    def _delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        return self._rng.uniform(0.0, min(self.backoff_max, self.backoff_base * (2.0 ** retry)))  # full jitter

    # ---- one request, with retries ------------------------------------------------
    def _run(self, request: GenerationRequest, cancel: threading.Event) -> Generation:
        started = time.perf_counter()
        try:
            path, body = self._body(request)
        except ValueError as e:
            return Generation(text=None, error=f"not sent: {e}")
        retries = 0
        failovers = 0
        exclude: set[str] = set()
        while True:
            if cancel.is_set():
                return Generation(text=None, error="cancelled", latency_s=time.perf_counter() - started)
            server = self._pick(exclude)
            outcome: dict[str, Any] | _Failure = _Failure("no attempt", retryable=False)
            try:
                outcome = self._attempt(server, path, body)
            finally:
                self._release(server, ok=not isinstance(outcome, _Failure))
            if not isinstance(outcome, _Failure):
                return self._generation(request, path, outcome, time.perf_counter() - started)

            attempts = retries + failovers + 1
            if not outcome.retryable:
                return Generation(text=None, error=f"{outcome.message} (not retried)",
                                  latency_s=time.perf_counter() - started)
            if outcome.unreachable:
                self._mark_down(server)
                if failovers < len(self._servers) - 1 and self._other_up(server):
                    failovers += 1  # another server takes it now; not counted as a retry
                    exclude = {server.url}
                    continue
            if retries >= self.max_retries:
                return Generation(text=None, error=f"failed after {attempts} attempts "
                                                   f"({self.max_retries} retries); last error: {outcome.message}",
                                  latency_s=time.perf_counter() - started)
            delay = self._delay(retries, outcome.retry_after)
            retries += 1
            log.debug("retry %d/%d in %.2f s: %s", retries, self.max_retries, delay, outcome.message)
            exclude = {server.url} if len(self._servers) > 1 else set()
            if cancel.wait(delay):
                return Generation(text=None, error=f"cancelled; last error: {outcome.message}",
                                  latency_s=time.perf_counter() - started)

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

    def _run_safe(self, request: GenerationRequest, cancel: threading.Event) -> Generation:
        try:
            return self._run(request, cancel)
        except Exception as e:  # recorded, not raised: one bad call must not end a run
            log.exception("unexpected error in an OpenAI-compatible request")
            return Generation(text=None, error=f"{type(e).__name__}: {e}")

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

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def __enter__(self) -> "OpenAIBackend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
