"""The server list of an `OpenAIBackend`: base URLs, the /v1/models probe, which server takes a request."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from .state import BackendState, _Server

__all__ = ["ServerChoice", "_Server", "_normalize_url", "_root_of"]

log = logging.getLogger(__package__)  # the package's logger, the same name as before the split


def _normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url:
        raise ValueError("empty base URL")
    if urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url


def _root_of(url: str) -> str:
    return url[: -len("/v1")] if url.endswith("/v1") else url


class ServerChoice(BackendState):
    """`OpenAIBackend` methods over `self._servers` (set in its `__init__`): probe, choice, down marks."""

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
