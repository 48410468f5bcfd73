"""A real 4-token generation with the default model, in a child process.

`python -m recsaver.doctor.probe MODEL.gguf` loads the model with llama.cpp, generates greedily and
prints one JSON line. `run_probe` starts it and reads the result; a child killed by a signal (a
native crash) comes back as that signal's name, never as a crash of the caller.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

PROMPT = "The capital of France is"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str
    signal: str | None = None
    seconds: float = 0.0


def probe_command(model_path: str, tokens: int = 4) -> list[str]:
    return [sys.executable, "-m", "recsaver.doctor.probe", model_path, str(tokens)]


def run_probe(command: Sequence[str], timeout_s: float = 300.0) -> ProbeResult:
    """Run a probe child; its last stdout line is JSON `{"text": ...}` when it worked."""
    started = time.perf_counter()
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"no answer within {timeout_s:.0f} s", seconds=time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        return ProbeResult(False, f"the child process was killed by {name}" + (f": {tail}" if tail else ""),
                           signal=name, seconds=seconds)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        return ProbeResult(False, f"exit code {done.returncode}: {tail or 'no output'}", seconds=seconds)
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError:
        return ProbeResult(False, f"unreadable probe output: {lines[-1][:120]!r}", seconds=seconds)
    return ProbeResult(True, f"{result['tokens']} tokens {result['text']!r} in {result['seconds']:.2f} s",
                       seconds=seconds)


def main(argv: Sequence[str]) -> None:
    from llama_cpp import Llama

    path, tokens = argv[0], int(argv[1]) if len(argv) > 1 else 4
    started = time.perf_counter()
    llm = Llama(model_path=path, n_ctx=256, verbose=False, seed=0)
    out = llm.create_completion(PROMPT, max_tokens=tokens, temperature=0.0)
    assert not isinstance(out, Iterator)  # stream=False (the default) returns one response, not chunks
    llm.close()
    print(json.dumps({"text": out["choices"][0]["text"], "tokens": out["usage"]["completion_tokens"],
                      "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main(sys.argv[1:])
