"""Two runs on one machine and one cache (issue 15, point 6): real `recsaver predict` processes.

The second run starts once the first has claimed its generations; it must compute none of them
itself, wait for the first, and write the same predictions.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recsaver.data.records import load_predictions

pytestmark = pytest.mark.slow
LIMIT = 3


def predict_cmd(data: Path, cache: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "recsaver.cli", "predict", "--data", str(data), "--limit", str(LIMIT),
            "--method", "cot", "--grammar", "--max-tokens", "64", "--cache", str(cache), "--out", str(out),
            "--no-progress"]


def claims(cache: Path) -> int:
    try:
        with sqlite3.connect(cache, timeout=30) as con:
            return con.execute("SELECT count(*) FROM claims").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_a_second_run_waits_for_the_first_instead_of_recomputing(small_beauty: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    env = {**os.environ, "RECSAVER_CORES_DIR": str(tmp_path / "cores")}
    first = subprocess.Popen(predict_cmd(small_beauty, cache, tmp_path / "a"), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while claims(cache) == 0:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the first run never claimed its generations"
        time.sleep(0.05)
    second = subprocess.run(predict_cmd(small_beauty, cache, tmp_path / "b"), env=env, capture_output=True,
                            text=True, timeout=600)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    a = json.loads((tmp_path / "a" / "run.json").read_text())["ledger"]
    b = json.loads((tmp_path / "b" / "run.json").read_text())["ledger"]
    assert a["cache_misses"] == LIMIT and b["cache_misses"] == 0, (a, b)
    assert b["cache_hits"] == LIMIT and b["waited_for_another_process"] >= 1, b
    a_rows, b_rows = (load_predictions(tmp_path / run / "predictions.jsonl") for run in ("a", "b"))
    assert a_rows == b_rows
    assert claims(cache) == 0  # every claim released
    assert not list((tmp_path / "cores").glob("llamacpp-*.lock"))  # both core-share files removed
