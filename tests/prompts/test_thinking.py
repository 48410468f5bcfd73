"""Reasoning models: a `<think>` block or `reasoning_content` is kept as `thinking`, never parsed or scored.

The end-to-end test runs `recsaver predict --model openai/...` against a small stdlib HTTP server started
here, which answers the way vLLM / DeepSeek do for a reasoning model: the thinking in
`message.reasoning_content` and, as some chat templates leave it, a `<think>` block inside `content`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from recsaver.backends.base import Generation
from recsaver.cli import app
from recsaver.data.records import Prediction
from recsaver.prompts import parse_answer, parse_explanation
from recsaver.prompts.parse import split_thinking
from recsaver.steps import external

ANSWER = "### Reason ###\nThe user rates mild cleansers highly.\n\n### Rating ###\n4"
THINK = "Hmm, maybe 2? Their history says 5. Let me settle on 4."
SERVER_THINKING = "Server-side thinking: the user likes soaps."


def test_parse_answer_strips_thinking() -> None:
    plain = parse_answer(ANSWER, "cot")
    thought = parse_answer(f"<think>\n{THINK}\n</think>\n\n{ANSWER}", "cot")
    assert (thought.reasoning, thought.rating, thought.format_ok) == (plain.reasoning, plain.rating, plain.format_ok)
    assert plain.rating == 4 and plain.format_ok and plain.thinking is None
    assert thought.thinking == THINK
    # an opening tag the server dropped; an empty block (thinking switched off); direct answers
    assert parse_answer(f"{THINK}</think>{ANSWER}", "cot") == thought
    assert parse_answer(f"<think>\n\n</think>\n{ANSWER}", "cot") == plain
    assert parse_answer("<think>Rating: 1</think>### Rating ###\n5", "direct").rating == 5
    # cut off while thinking: the thinking is kept, and its numbers are no rating
    cut = parse_answer("<think>I would give it a rating of 2 because", "cot")
    assert (cut.rating, cut.reasoning, cut.thinking) == (None, None, "I would give it a rating of 2 because")


def test_parse_explanation_strips_thinking() -> None:
    assert parse_explanation(f"<think>{THINK}</think>\n{ANSWER}") == parse_explanation(ANSWER)
    assert parse_explanation(ANSWER) == "The user rates mild cleansers highly."


def test_split_thinking_moved_and_reexported() -> None:
    assert external.split_thinking is split_thinking
    assert split_thinking("  No thinking here. ") == (None, "No thinking here.")
    assert split_thinking("<think>a</think>x<think>b</think>y") == ("a\n\nb", "xy")


def test_generation_round_trip() -> None:
    plain = Generation(text=ANSWER, prompt_tokens=3, completion_tokens=5)
    assert "thinking" not in plain.to_dict()
    assert Generation.from_dict(plain.to_dict()) == plain
    thought = Generation(text=ANSWER, completion_tokens=9, thinking=THINK)
    assert thought.to_dict()["thinking"] == THINK
    assert Generation.from_dict(thought.to_dict()) == thought


def test_prediction_round_trip() -> None:
    plain = Prediction(example_id="e1", rating_true=5, rating_pred=4, reasoning="r", raw=ANSWER)
    assert "thinking" not in plain.to_dict()
    assert Prediction.from_dict(plain.to_dict()) == plain
    thought = Prediction(example_id="e1", rating_true=5, rating_pred=4, reasoning="r", thinking=THINK)
    assert thought.to_dict()["thinking"] == THINK
    assert Prediction.from_dict(thought.to_dict()) == thought


class _ReasoningServer:
    """/v1/models and /v1/chat/completions answering like a reasoning model on vLLM (stdlib, 127.0.0.1)."""

    def __init__(self, model: str = "thinker") -> None:
        self.model = model
        self.bodies: list[Any] = []
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, obj: Any) -> None:
                payload = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": srv.model, "object": "model"}]})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                if self.path != "/v1/chat/completions":
                    self._json(404, {"error": f"no route {self.path}"})
                    return
                srv.bodies.append(body)
                message = {"role": "assistant", "reasoning_content": SERVER_THINKING,
                           "content": f"<think>{THINK}</think>\n\n{ANSWER}"}
                self._json(200, {"id": "chatcmpl-1", "object": "chat.completion", "model": srv.model,
                                 "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": 50, "completion_tokens": 40, "total_tokens": 90}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)


@pytest.fixture
def reasoning_server() -> Iterator[_ReasoningServer]:
    server = _ReasoningServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def test_openai_backend_keeps_reasoning_content(reasoning_server: _ReasoningServer) -> None:
    from recsaver.backends.base import GenerationRequest
    from recsaver.backends.openai_compat import OpenAIBackend

    with OpenAIBackend("thinker", reasoning_server.url, api_key_env=None, timeout=5.0) as backend:
        request = GenerationRequest.from_messages([{"role": "user", "content": "Rate it."}])
        (g,) = backend.generate([request])
        # a batch output line's body goes through the same reading (batch.py -> _generation)
        body = {"choices": [{"message": {"content": ANSWER, "reasoning": THINK}, "finish_reason": "stop"}]}
        from_batch = backend._generation(request, "/chat/completions", body, 0.1)
    assert g.ok and g.thinking == SERVER_THINKING and g.text is not None and "<think>" in g.text
    assert from_batch.thinking == THINK and from_batch.text == ANSWER


def test_predict_cli_keeps_thinking_apart(reasoning_server: _ReasoningServer, small_beauty: Path,
                                          tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "predict", "--model", "openai/thinker", "--base-url", reasoning_server.url, "--data", str(small_beauty),
        "--limit", "3", "--no-rating-probs", "--no-grammar", "--cache", str(tmp_path / "cache.sqlite"),
        "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and reasoning_server.bodies
    for row in rows:
        assert row["status"] == "ok" and row["rating_pred"] == 4 and row["rating_source"] == "parsed"
        assert row["reasoning"] == "The user rates mild cleansers highly."
        assert "think" not in row["reasoning"].lower() and "Hmm" not in row["reasoning"]
        assert row["thinking"] == f"{SERVER_THINKING}\n\n{THINK}"
    ledger = json.loads((out / "run.json").read_text())["ledger"]
    # the characters of the thinking as each record stores it (both parts, joined by a blank line)
    assert ledger["thinking_chars"] == 3 * len(f"{SERVER_THINKING}\n\n{THINK}")
    assert ledger["completion_tokens"] == 3 * 40


def test_references_keep_the_writers_thinking_apart(reasoning_server: _ReasoningServer, small_beauty: Path,
                                                    tmp_path: Path) -> None:
    """A reasoning model writing Rec-SAVER explanations: the thinking goes to the candidate's `thinking`, never
    into the explanation the verifier reads, the scrubber sees, or the pool holds."""
    out = tmp_path / "refs"
    result = CliRunner().invoke(app, [
        "references", "--model", "openai/thinker", "--base-url", reasoning_server.url, "--data", str(small_beauty),
        "--limit", "2", "--samples", "2", "--no-grammar", "--verify", "exact", "--cache",
        str(tmp_path / "cache.sqlite"), "--out", str(out), "--no-progress"])
    rows = [json.loads(line) for line in (out / "references.jsonl").read_text().splitlines()]
    assert len(rows) == 2, result.output
    candidates = [c for row in rows for c in row["candidates"]]
    assert len(candidates) == 4
    for c in candidates:
        assert c["text"] == "The user rates mild cleansers highly."
        assert c["thinking"] == f"{SERVER_THINKING}\n\n{THINK}"
        assert c["verify_rating"] == 4  # the verifier's answer was read past its own thinking
    verify_prompts = [m["content"] for b in reasoning_server.bodies for m in b["messages"]]
    assert not any(THINK in p or SERVER_THINKING in p for p in verify_prompts)
    assert any(r["references"] == ["The user rates mild cleansers highly."] * 2 for r in rows if r["rating"] == 4) \
        or all(r["rating"] != 4 for r in rows)
