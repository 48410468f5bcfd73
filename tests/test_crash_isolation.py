"""Crash isolation: the suite runs in an xdist worker process (pyproject addopts `-n 1`), so a native
crash (a llama.cpp segfault) fails the one test it hit, with the signal named, and the rest still run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_segfaulting_test_fails_alone_with_its_signal_named() -> None:
    env = {**os.environ, "RECSAVER_CRASH_DEMO": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/crash_demo", "-p", "no:cacheprovider", "-rf"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "2 passed" in out and "1 failed" in out, out
    assert "test_segfaults" in out and "SIGSEGV" in out, out
    assert "replacing crashed worker" in out, out
