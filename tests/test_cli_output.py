"""Machine-readable output (issue 15, point 5): a printed path is one line when stdout is not a terminal,
however narrow the terminal settings, so `$(recsaver models path NAME)` works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def recsaver(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "20"}  # narrower than any path printed below
    return subprocess.run([sys.executable, "-m", "recsaver.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_models_path_prints_exactly_one_line() -> None:
    done = recsaver("models", "path", "smollm2-135m")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and Path(lines[0]).is_file() and lines[0].endswith(".gguf"), done.stdout


def test_data_sample_prints_one_path_a_line() -> None:
    done = recsaver("data", "sample", "movies")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(Path(line).is_file() for line in lines), done.stdout


def test_messages_naming_paths_do_not_wrap(tmp_path: Path) -> None:
    out = tmp_path / "a-folder-name-long-enough-to-wrap-at-twenty-columns" / "baseline-run"
    data = tmp_path / "data"
    reviews, meta = recsaver("data", "sample", "beauty").stdout.splitlines()
    assert recsaver("data", "prepare", reviews, meta, "--domain", "beauty", "--out", str(data), "--no-progress",
                    "--train-per-label", "4", "--test-per-label", "2", "--test-fraction", "0.3").returncode == 0
    done = recsaver("baseline", "--data", str(data), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}/predictions.jsonl, metrics.json, run.json" in done.stdout.splitlines()
