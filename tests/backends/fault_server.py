"""A small real HTTP server speaking the OpenAI chat/completions protocol, with scriptable faults.

Stdlib only: `ThreadingHTTPServer` on 127.0.0.1, an ephemeral port, served
from a daemon thread, HTTP/1.1 keep-alive like real servers. Each POST to
/v1/chat/completions or /v1/completions takes the next fault from its script
(per-marker scripts first: a request whose last message or prompt contains the
marker; then the global script); with no fault left it answers a canned valid
completion, ``"ok:" + <last message content>`` by default.

Faults (`Fault.kind`):
  ok            a valid completion (useful to place inside a script)
  "<status>"    that HTTP status with a JSON error body: 500, 503, 429, 400, 401, 404...
                (429 and 503 carry `retry_after` as Retry-After when given: "1" or an HTTP date)
  delay         sleep `seconds` before answering normally (longer than the client timeout)
  truncated     headers with a Content-Length larger than the body, part of the body, then close
  invalid_json  200 with a body that is not JSON
  reset         close the connection with a TCP RST, no response
  no_choices    200 with valid JSON but no "choices"

It records every request (arrival time from time.monotonic(), path, parsed
body, fault), and tracks requests in flight and their maximum. `kill()`
closes the listening socket and resets every open connection, like a crashed
server: later connections are refused.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Fault:
    kind: str
    seconds: float = 0.0  # for "delay"
    retry_after: str | None = None  # for "429" / "503"


def as_fault(f: Fault | str) -> Fault:
    return f if isinstance(f, Fault) else Fault(str(f))


@dataclass
class Seen:
    t: float
    path: str
    body: Any
    fault: str
    headers: dict[str, str]


def _last_text(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    if body.get("messages"):
        return str(body["messages"][-1].get("content", ""))
    return str(body.get("prompt") or "")


def default_reply(body: Any) -> str:
    return "ok:" + _last_text(body)


def chat_logprobs(text_tokens: list[str], top: list[list[tuple[str, float]]]) -> dict[str, Any]:
    """Chat-format logprobs for canned answers: one entry per token with its top alternatives."""
    return {"content": [
        {"token": tok, "logprob": (alts[0][1] if alts else 0.0), "bytes": None,
         "top_logprobs": [{"token": a, "logprob": lp, "bytes": None} for a, lp in alts]}
        for tok, alts in zip(text_tokens, top)]}


class FaultServer:
    def __init__(self, script: Iterable[Fault | str] = (), *, model: str = "fault-model",
                 reply: Callable[[Any], str] = default_reply, response_delay: float = 0.0,
                 logprobs: Callable[[Any], dict[str, Any] | None] | None = None, tokenize: bool = True):
        self.model = model
        self.reply = reply
        self.response_delay = response_delay
        self.logprobs = logprobs
        self.tokenize = tokenize
        self._lock = threading.Lock()
        self._script: deque[Fault] = deque(as_fault(f) for f in script)
        self._marked: dict[str, deque[Fault]] = {}
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.killed = False
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, client_address: None  # faults make noisy tracebacks
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"fault-server-{self.port}")

    # ---- control ------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def script(self, faults: Iterable[Fault | str], marker: str | None = None) -> None:
        with self._lock:
            target = self._script if marker is None else self._marked.setdefault(marker, deque())
            target.extend(as_fault(f) for f in faults)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.seen)

    def completions_seen(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path.endswith("completions")]

    def kill(self) -> None:
        """Crash: stop listening and reset every open connection."""
        with self._lock:
            self.killed = True
            conns = list(self._conns)
        self._httpd.shutdown()
        self._httpd.server_close()
        for c in conns:
            _reset(c, wake=True)
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if not self.killed:
            self.kill()

    # ---- internals ------------------------------------------------------------
    def _next_fault(self, body: Any) -> Fault:
        text = _last_text(body)
        with self._lock:
            for marker, queue in self._marked.items():
                if marker in text and queue:
                    return queue.popleft()
            return self._script.popleft() if self._script else Fault("ok")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with srv._lock:
                    srv._conns.add(self.connection)

            def finish(self) -> None:
                try:
                    super().finish()
                except OSError:
                    pass
                with srv._lock:
                    srv._conns.discard(self.connection)

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None,
                      content_length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload) if content_length is None else content_length))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()

            def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(obj).encode(), headers)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": srv.model, "object": "model"}]})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                if self.path in ("/extras/tokenize",):
                    if not srv.tokenize:
                        self._json(404, {"error": "not found"})
                    else:
                        self._json(200, {"tokens": list(range(len(str(body.get("input", "")).split())))})
                    return
                if self.path not in ("/v1/chat/completions", "/v1/completions"):
                    self._json(404, {"error": f"no route {self.path}"})
                    return
                if srv.killed:
                    _reset(self.connection)
                    self.close_connection = True
                    return
                fault = srv._next_fault(body)
                with srv._lock:
                    srv.seen.append(Seen(time.monotonic(), self.path, body, fault.kind, dict(self.headers.items())))
                    srv.in_flight += 1
                    srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
                try:
                    self._serve(fault, body)
                except OSError:
                    self.close_connection = True
                finally:
                    with srv._lock:
                        srv.in_flight -= 1

            def _serve(self, fault: Fault, body: Any) -> None:
                kind = fault.kind
                if kind == "delay":
                    if srv._stop.wait(fault.seconds):
                        self.close_connection = True
                        return
                    kind = "ok"
                if kind == "reset":
                    _reset(self.connection)
                    self.close_connection = True
                    return
                if kind.isdigit():  # any HTTP status: 500, 503, 429, 400, 401, 404, ...
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
                    self._json(int(kind), {"error": {"message": f"scripted {kind}", "code": int(kind)}}, headers)
                    return
                if kind == "invalid_json":
                    self._send(200, b'{"id": "x", "choices": [{"message": ')
                    return
                if kind == "no_choices":
                    self._json(200, {"id": "x", "object": "chat.completion"})
                    return
                payload = json.dumps(self._completion(body)).encode()
                if kind == "truncated":
                    self._send(200, payload[: len(payload) // 2], content_length=len(payload))
                    self.close_connection = True
                    return
                if srv.response_delay and srv._stop.wait(srv.response_delay):
                    self.close_connection = True
                    return
                if srv.killed:
                    _reset(self.connection)
                    self.close_connection = True
                    return
                self._send(200, payload)

            def _completion(self, body: Any) -> dict[str, Any]:
                text = srv.reply(body)
                usage = {"prompt_tokens": len(_last_text(body).split()) + 7,
                         "completion_tokens": max(1, len(text.split())), "total_tokens": 0}
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                logprobs = srv.logprobs(body) if srv.logprobs is not None else None
                if self.path == "/v1/completions":
                    choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": logprobs}
                    return {"id": "cmpl-1", "object": "text_completion", "model": srv.model,
                            "choices": [choice], "usage": usage}
                choice = {"index": 0, "message": {"role": "assistant", "content": text},
                          "finish_reason": "stop", "logprobs": logprobs}
                return {"id": "chatcmpl-1", "object": "chat.completion", "model": srv.model,
                        "choices": [choice], "usage": usage}

        return Handler


def _reset(conn: socket.socket, wake: bool = False) -> None:
    """Close with RST (SO_LINGER 0): the peer sees 'connection reset', not a clean close.

    `wake` also shuts the socket down first, so a handler thread blocked reading it returns."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    if wake:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    try:
        conn.close()
    except OSError:
        pass


__all__ = ["Fault", "FaultServer", "Seen", "chat_logprobs", "default_reply"]
