"""One HTTP attempt of an `OpenAIBackend` and the retry loop around it (backoff, `Retry-After`, fail-over)."""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from .servers import ServerChoice, _Server

log = logging.getLogger(__package__)  # the package's logger, the same name as before the split

RETRYABLE_STATUS = frozenset({408, 429})  # and every 5xx


@dataclass
class _Failure:
    message: str
    retryable: bool
    unreachable: bool = False  # the connection could not be made: mark the server down, fail over
    retry_after: float | None = None


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

        when = when.replace(tzinfo=_dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


class Retries(ServerChoice):
    """`OpenAIBackend` methods that send one request: attempts, delays, retries, fail-over."""

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
    def _exchange(self, path: str, body: dict[str, Any], cancel: threading.Event) -> dict[str, Any] | str:
        """POST `body` to `path` with retries and fail-over: the response data, or the error message."""
        retries = 0
        failovers = 0
        exclude: set[str] = set()
        while True:
            if cancel.is_set():
                return "cancelled"
            server = self._pick(exclude)
            outcome: dict[str, Any] | _Failure = _Failure("no attempt", retryable=False)
            try:
                outcome = self._attempt(server, path, body)
            finally:
                self._release(server, ok=not isinstance(outcome, _Failure))
            if not isinstance(outcome, _Failure):
                return outcome

            attempts = retries + failovers + 1
            if not outcome.retryable:
                return f"{outcome.message} (not retried)"
            if outcome.unreachable:
                self._mark_down(server)
                if failovers < len(self._servers) - 1 and self._other_up(server):
                    failovers += 1  # another server takes it now; not counted as a retry
                    exclude = {server.url}
                    continue
            if retries >= self.max_retries:
                return (f"failed after {attempts} attempts ({self.max_retries} retries); "
                        f"last error: {outcome.message}")
            delay = self._delay(retries, outcome.retry_after)
            retries += 1
            log.debug("retry %d/%d in %.2f s: %s", retries, self.max_retries, delay, outcome.message)
            exclude = {server.url} if len(self._servers) > 1 else set()
            if cancel.wait(delay):
                return f"cancelled; last error: {outcome.message}"
