"""`recsaver predict --model openai/NAME --batch` against a local OpenAI Batch API, from the CLI, on real data.

`BatchServer` below is a protocol double for our own client, not a model: a stdlib HTTP server on
127.0.0.1 (ephemeral port) that implements the files and batches endpoints as the OpenAI API
reference describes them (``POST /v1/files`` multipart with ``purpose=batch``, ``GET
/v1/files/{id}/content``, ``POST /v1/batches`` with ``input_file_id``, ``endpoint`` and
``completion_window``, ``GET /v1/batches/{id}`` with its status, ``output_file_id`` and
``error_file_id``). It answers each batched chat request with a deterministic completion made from a
digest of its messages, so the test can tell which answer belongs to which request. What it proves is
that our client speaks the protocol, resumes and retries as it says; nothing about any model's output.

The data is real: the session fixture `small_beauty` (a prepared Beauty 2023 folder from ../shared/data).
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from recsaver.cache import count_generations
from recsaver.cli import app
from recsaver.prompts.rating import RATING_HEADER

MODEL = "batch-model"
FAST = {"RECSAVER_BATCH_POLL_S": "0.01", "RECSAVER_BATCH_POLL_MAX_S": "0.05"}
Fate = Callable[[int, int, str], str]  # (batch number from 1, line number from 0, custom_id) -> ok | error | missing


def answer(messages: list[dict[str, str]]) -> str:
    """The double's deterministic completion: a digest of the messages and a rating read off it."""
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
    return f"The prompt's digest is {digest[:16]}.\n{RATING_HEADER}{int(digest, 16) % 5 + 1}"


def completion(body: dict[str, Any]) -> dict[str, Any]:
    text = answer(body["messages"])
    return {"id": "chatcmpl-" + hashlib.sha256(text.encode()).hexdigest()[:12], "object": "chat.completion",
            "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}}


def all_ok(batch_no: int, line_no: int, custom_id: str) -> str:
    return "ok"


class BatchServer:
    """Files and batches endpoints of the OpenAI API (see the module docstring): a protocol double."""

    def __init__(self, fate: Fate = all_ok, polls_before_done: int = 1):
        self.fate, self.polls_before_done = fate, polls_before_done
        self.hold = threading.Event()  # set: every batch stays in_progress
        self.lock = threading.Lock()
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.inputs: dict[str, list[dict[str, Any]]] = {}  # batch id -> its input lines, parsed
        self.calls: list[tuple[str, str]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> BatchServer:
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, method: str, prefix: str) -> int:
        with self.lock:
            return sum(1 for m, p in self.calls if m == method and p.startswith(prefix))

    def batch_ids(self) -> list[str]:
        with self.lock:
            return list(self.batches)

    # ---- the endpoints ------------------------------------------------------------------
    def upload(self, content_type: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        if not msg.is_multipart():
            return 400, {"error": {"message": "expected multipart/form-data", "type": "invalid_request_error"}}
        parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
        if "file" not in parts or "purpose" not in parts:
            return 400, {"error": {"message": "file and purpose are required", "type": "invalid_request_error"}}
        purpose = parts["purpose"].get_payload(decode=True).decode()
        data = parts["file"].get_payload(decode=True)
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = obj = {"id": file_id, "object": "file", "bytes": len(data),
                                     "created_at": int(time.time()), "filename": parts["file"].get_filename(),
                                     "purpose": purpose, "data": data}
        return 200, {k: v for k, v in obj.items() if k != "data"}

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        source = self.files.get(body.get("input_file_id", ""))
        if source is None or source["purpose"] != "batch":
            return 400, {"error": {"message": "input_file_id must name a file uploaded with purpose batch"}}
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return 400, {"error": {"message": "endpoint /v1/chat/completions and completion_window 24h expected"}}
        lines = [json.loads(line) for line in source["data"].splitlines() if line.strip()]
        ids = [line["custom_id"] for line in lines]
        if len(set(ids)) != len(ids) or any(line["method"] != "POST" or line["url"] != body["endpoint"]
                                            or "messages" not in line["body"] for line in lines):
            return 400, {"error": {"message": "bad input lines"}}
        batch_id = f"batch_{len(self.batches) + 1}"
        now = int(time.time())
        self.batches[batch_id] = batch = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
            "input_file_id": body["input_file_id"], "completion_window": "24h", "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
            "expires_at": now + 86400, "finalizing_at": None, "completed_at": None, "failed_at": None,
            "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "metadata": body.get("metadata"),
            "_polls": 0}
        self.inputs[batch_id] = lines
        return 200, {k: v for k, v in batch.items() if not k.startswith("_")}

    def status(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        batch = self.batches.get(batch_id)
        if batch is None:
            return 404, {"error": {"message": f"No batch found with id '{batch_id}'."}}
        batch["_polls"] += 1
        if batch["status"] in ("validating", "in_progress"):
            if self.hold.is_set() or batch["_polls"] <= self.polls_before_done:
                batch["status"], batch["in_progress_at"] = "in_progress", int(time.time())
            else:
                self._finish(batch)
        return 200, {k: v for k, v in batch.items() if not k.startswith("_")}

    def _finish(self, batch: dict[str, Any]) -> None:
        number = list(self.batches).index(batch["id"]) + 1
        out, err = [], []
        for n, line in enumerate(self.inputs[batch["id"]]):
            fate = self.fate(number, n, line["custom_id"])
            if fate == "ok":
                out.append({"id": f"batch_req_{number}_{n}", "custom_id": line["custom_id"],
                            "response": {"status_code": 200, "request_id": f"req_{n}",
                                         "body": completion(line["body"])}, "error": None})
            elif fate == "error":
                err.append({"id": f"batch_req_{number}_{n}", "custom_id": line["custom_id"], "response": None,
                            "error": {"code": "batch_expired", "message": "This request could not be executed "
                                      "before the completion window expired."}})
        for rows, field in ((out, "output_file_id"), (err, "error_file_id")):
            if rows:
                data = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
                file_id = f"file-{len(self.files) + 1}"
                self.files[file_id] = {"id": file_id, "purpose": "batch_output", "data": data}
                batch[field] = file_id
        total = batch["request_counts"]["total"]
        batch["request_counts"] = {"total": total, "completed": len(out), "failed": total - len(out)}
        expired = len(out) < total
        batch["status"] = "expired" if expired else "completed"
        batch["expired_at" if expired else "completed_at"] = int(time.time())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                with srv.lock:
                    srv.calls.append(("GET", self.path))
                    parts = self.path.strip("/").split("/")
                    if self.path == "/v1/models":
                        return self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
                    if parts[:2] == ["v1", "batches"] and len(parts) == 3:
                        return self._send(*srv.status(parts[2]))
                    if parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content":
                        f = srv.files.get(parts[2])
                        return self._send(200, None, f["data"]) if f else self._send(404, {"error": "no file"})
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with srv.lock:
                    srv.calls.append(("POST", self.path))
                    if self.path == "/v1/files":
                        return self._send(*srv.upload(self.headers.get("Content-Type", ""), raw))
                    if self.path == "/v1/batches":
                        return self._send(*srv.create(json.loads(raw)))
                    self._send(404, {"error": {"message": f"no route {self.path}"}})  # tokenize, chat: not here

        return Handler


def predict(data: Path, server: BatchServer, cache: Path, out: Path, *extra: str,
            env: dict[str, str] | None = None) -> Any:
    args = ["predict", "--data", str(data), "--model", f"openai/{MODEL}", "--base-url", server.url, "--batch",
            "--limit", "6", "--cache", str(cache), "--out", str(out), "--no-progress", *extra]
    return CliRunner().invoke(app, args, env={**FAST, "OPENAI_API_KEY": "", **(env or {})})


def uploaded(server: BatchServer, batch_id: str) -> dict[str, dict[str, Any]]:
    return {line["custom_id"]: line for line in server.inputs[batch_id]}


def expected_lines(data: Path, server: BatchServer, limit: int = 6) -> dict[str, dict[str, Any]]:
    """What the backend would send without --batch, by cache key: built by the step's own request builder."""
    from recsaver.backends.openai_compat import OpenAIBackend, batch_line
    from recsaver.config.schema import PredictConfig
    from recsaver.steps.predict import build_requests, load_split, make_builder

    cfg = PredictConfig(data=str(data), model=f"openai/{MODEL}", base_urls=(server.url,), limit=limit)
    examples = load_split(data, "test", limit)
    with OpenAIBackend(MODEL, server.url, api_key_env=None, context_length=cfg.n_ctx) as backend:
        requests, _ = build_requests(cfg, make_builder(cfg, examples), examples, backend)
        return {r.key(backend.model_id): batch_line(r.key(backend.model_id), *backend._body(r)) for r in requests}


def records(cache: Path) -> list[Path]:
    folder = Path(f"{cache}.batches")
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_a_batch_lands_every_result_in_the_cache_and_a_rerun_calls_nothing(small_beauty: Path,
                                                                          tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    with BatchServer(polls_before_done=2) as server:
        result = predict(small_beauty, server, cache, tmp_path / "run")
        assert result.exit_code == 0, result.output
        (batch_id,) = server.batch_ids()
        expected = expected_lines(small_beauty, server)
        assert uploaded(server, batch_id) == expected  # custom_id = cache key, body = the normal call's body
        assert server.count("POST", "/v1/files") == 1 and server.count("POST", "/v1/batches") == 1
        assert server.count("GET", f"/v1/batches/{batch_id}") == 3  # in_progress twice, then completed
        assert server.count("POST", "/v1/chat/completions") == 0  # nothing went the normal way
        assert count_generations(cache) == len(expected) == 6
        assert records(cache) == []  # collected: the record and its JSONL are gone

        predictions = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
        assert all(p["status"] != "failed" and p["rating_pred"] in range(1, 6) for p in predictions)
        run = json.loads((tmp_path / "run" / "run.json").read_text())
        assert run["ledger"]["cache_misses"] == 6 and run["ledger"]["failed"] == 0

        before = list(server.calls)
        again = predict(small_beauty, server, cache, tmp_path / "run2")
        assert again.exit_code == 0, again.output
        new = server.calls[len(before):]
        assert not [c for c in new if "/files" in c[1] or "/batches" in c[1]], new
        assert json.loads((tmp_path / "run2" / "run.json").read_text())["ledger"]["cache_hits"] == 6


def test_a_partly_expired_batch_has_its_failed_lines_retried_in_a_follow_up(small_beauty: Path,
                                                                           tmp_path: Path) -> None:
    def fate(batch_no: int, line_no: int, custom_id: str) -> str:
        if batch_no == 1:  # the first batch expires with two lines in the error file and one missing
            return {0: "error", 3: "error", 4: "missing"}.get(line_no, "ok")
        return "ok"

    cache = tmp_path / "cache.sqlite"
    with BatchServer(fate) as server:
        result = predict(small_beauty, server, cache, tmp_path / "run")
        assert result.exit_code == 0, result.output
        first, second = server.batch_ids()
        assert server.batches[first]["status"] == "expired" and server.batches[second]["status"] == "completed"
        lines = server.inputs[first]
        assert set(uploaded(server, second)) == {lines[n]["custom_id"] for n in (0, 3, 4)}
        assert count_generations(cache) == 6 and records(cache) == []
        assert json.loads((tmp_path / "run" / "run.json").read_text())["ledger"]["failed"] == 0


def test_a_line_that_keeps_failing_is_an_error_saying_why_after_the_follow_ups(small_beauty: Path,
                                                                              tmp_path: Path) -> None:
    doomed: list[str] = []

    def fate(batch_no: int, line_no: int, custom_id: str) -> str:
        if batch_no == 1 and line_no == 2:
            doomed.append(custom_id)
        return "error" if doomed and custom_id == doomed[0] else "ok"

    cache = tmp_path / "cache.sqlite"
    with BatchServer(fate) as server:
        result = predict(small_beauty, server, cache, tmp_path / "run")
        assert result.exit_code == 3, result.output  # incomplete: one call failed, and the run says so
        assert len(server.batch_ids()) == 3  # the batch and two follow-ups (the default), no more
        assert [len(server.inputs[b]) for b in server.batch_ids()] == [6, 1, 1]
        run = json.loads((tmp_path / "run" / "run.json").read_text())
        (error,) = run["errors"]
        assert "batch_expired" in error and "after 3 batches" in error and "batch_3 (expired)" in error
        assert count_generations(cache) == 5


def test_a_run_killed_while_polling_resumes_its_batch_by_id(small_beauty: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    with BatchServer() as server:
        server.hold.set()  # the batch stays in_progress: the run polls until it is killed
        args = [sys.executable, "-m", "recsaver.cli", "predict", "--data", str(small_beauty), "--model",
                f"openai/{MODEL}", "--base-url", server.url, "--batch", "--limit", "6", "--cache", str(cache),
                "--out", str(tmp_path / "killed"), "--no-progress"]
        proc = subprocess.Popen(args, env={**os.environ, **FAST, "OPENAI_API_KEY": ""},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 180
            while server.count("GET", "/v1/batches/") < 3:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "the run never polled its batch"
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        (batch_id,) = server.batch_ids()
        saved = [json.loads(p.read_text()) for p in records(cache) if p.suffix == ".json"]
        assert [r["batch_id"] for r in saved] == [batch_id] and len(saved[0]["keys"]) == 6
        assert count_generations(cache) == 0

        server.hold.clear()
        polls = server.count("GET", f"/v1/batches/{batch_id}")
        result = predict(small_beauty, server, cache, tmp_path / "resumed")
        assert result.exit_code == 0, result.output
        assert server.count("POST", "/v1/batches") == 1 and server.count("POST", "/v1/files") == 1  # not again
        assert server.count("GET", f"/v1/batches/{batch_id}") > polls
        assert count_generations(cache) == 6 and records(cache) == []


def test_the_batch_jsonl_runs_offline_and_its_results_land_in_the_cache(small_beauty: Path, tmp_path: Path) -> None:
    """RECSAVER_BATCH_FILE writes the JSONL vLLM's run-batch reads; RECSAVER_BATCH_RESULTS reads its output.
    The double's answers stand in for run-batch's (the same result line shape)."""
    cache, jsonl, results = tmp_path / "cache.sqlite", tmp_path / "requests.jsonl", tmp_path / "results.jsonl"
    with BatchServer() as server:
        written = predict(small_beauty, server, cache, tmp_path / "run", env={"RECSAVER_BATCH_FILE": str(jsonl)})
        assert written.exit_code == 3 and "not submitted" in " ".join(written.output.split()), written.output
        lines = {json.loads(line)["custom_id"]: json.loads(line) for line in jsonl.read_text().splitlines()}
        assert lines == expected_lines(small_beauty, server)
        results.write_text("".join(json.dumps({"id": f"vllm-{k[:8]}", "custom_id": k, "response": {
            "status_code": 200, "request_id": k[:8], "body": completion(line["body"])}, "error": None}) + "\n"
            for k, line in lines.items()))
        read = predict(small_beauty, server, cache, tmp_path / "run2", env={"RECSAVER_BATCH_RESULTS": str(results)})
        assert read.exit_code == 0, read.output
        assert count_generations(cache) == 6
        assert not [c for c in server.calls if "/files" in c[1] or "/batches" in c[1]]


def test_batch_is_refused_where_the_engine_cannot_batch(small_beauty: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["predict", "--data", str(small_beauty), "--model", "llamacpp/smollm2-135m",
                                      "--batch", "--limit", "1", "--cache", str(tmp_path / "c.sqlite"),
                                      "--out", str(tmp_path / "run"), "--no-progress"])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "--batch needs an openai/... model" in said and "llamacpp/smollm2-135m cannot batch" in said
    assert not (tmp_path / "c.sqlite.batches").exists()


@pytest.mark.parametrize("command", [["references", "run"], ["distill", "sample"]])
def test_every_generating_step_takes_batch(command: list[str]) -> None:
    text = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "300"}).output
    assert "--batch" in text and "--no-batch" in text
