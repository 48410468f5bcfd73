"""A recorded predict run and references run give byte-identical outputs (tests/pinned/runs.py)."""

from __future__ import annotations

import json

import pytest

from tests.pinned.runs import RUNS, run_all


@pytest.mark.slow
def test_recorded_runs_are_byte_identical(small_beauty, tmp_path) -> None:
    assert run_all(small_beauty, tmp_path) == json.loads(RUNS.read_text()), (
        "predict/references outputs changed; if intended, run `python -m tests.pinned.runs` and say why")
