"""kill -9 during `recsaver predict` at random points: nothing generated is lost or computed twice.

The run decodes its 3 examples together (the default --parallel 8, issue 17); what it finally writes
equals a run that decodes one sequence at a time with a fresh cache."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recsaver.cache import count_generations

pytestmark = pytest.mark.slow

LIMIT = 3


def command(data: Path, out: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "recsaver.cli", "predict", "--data", str(data), "--limit", str(LIMIT),
            "--max-tokens", "16", "--out", str(out), "--cache", str(cache), "--no-progress"]


def test_kill_minus_9_at_random_points(small_beauty: Path, tmp_path: Path) -> None:
    cache, out = tmp_path / "cache.sqlite", tmp_path / "run"
    rng = random.Random(1234)
    seen = [0]
    for _ in range(5):
        proc = subprocess.Popen(command(small_beauty, out, cache), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen.append(count_generations(cache))
        assert seen[-1] >= seen[-2], f"a kill lost cached generations: {seen}"
    before_final = seen[-1]
    done = subprocess.run(command(small_beauty, out, cache), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ledger = json.loads((out / "run.json").read_text())["ledger"]
    # Everything generated before the kills is reused, only the rest is generated, each exactly once.
    assert ledger["cache_hits"] == before_final
    assert ledger["cache_misses"] == LIMIT - before_final
    assert count_generations(cache) == LIMIT
    first = (out / "predictions.jsonl").read_bytes()
    again = subprocess.run(command(small_beauty, tmp_path / "again", cache), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "predictions.jsonl").read_bytes() == first
    assert json.loads((tmp_path / "again" / "run.json").read_text())["ledger"]["cache_misses"] == 0
    alone = subprocess.run([*command(small_beauty, tmp_path / "alone", tmp_path / "fresh.sqlite"), "--parallel", "1"],
                           capture_output=True, text=True)
    assert alone.returncode == 0, alone.stderr
    assert (tmp_path / "alone" / "predictions.jsonl").read_bytes() == first
