"""A recorded predict run and references run give byte-identical outputs (tests/pinned/runs.py)."""

from __future__ import annotations

import json

import pytest

from recsaver.doctor.cpu import cpu_name
from tests.pinned.runs import RUNS, run_all


@pytest.mark.slow
def test_recorded_runs_are_byte_identical(small_beauty, tmp_path) -> None:
    recorded = json.loads(RUNS.read_text())
    got = run_all(small_beauty, tmp_path)
    assert got in recorded.values(), (
        f"predict/references outputs on {cpu_name()!r} equal none of the sets recorded (on {sorted(recorded)}); "
        "if intended, or on a new CPU model, run `python -m tests.pinned.runs` and say why")
