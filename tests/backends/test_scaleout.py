"""Scale-out at the smallest scale: `predict` spread over two real llama.cpp servers (OpenAI-compatible).

One server is killed (SIGKILL) as soon as the first answer arrives; the other must carry the rest,
no prediction may be lost or failed, and a rerun must be served entirely from the cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsaver.data.records import load_predictions
from recsaver.steps.predict import PredictConfig, run_predict

from .llama_server import start_llama_server

pytestmark = pytest.mark.slow


def fleet_config(data: Path, bases: tuple[str, ...], cache: Path, balance: str) -> PredictConfig:
    return PredictConfig(
        data=str(data), model="openai/smollm2", method="direct", grammar=True, max_tokens=24, limit=4,
        base_urls=bases, concurrency=2, balance=balance, cache=str(cache),
        # generous timeout: a 1-thread server on a busy 2-core machine can take minutes per prompt
        extra={"api_key_env": None, "max_retries": 3, "timeout": 900.0, "down_cooldown": 900.0},
    )


@pytest.mark.parametrize("balance", ["least-busy"])
def test_fleet_survives_a_server_killed_mid_run(balance: str, small_beauty: Path, tmp_path: Path) -> None:
    first = start_llama_server(tmp_path, threads=1)
    second = start_llama_server(tmp_path, threads=1)
    try:
        cfg = fleet_config(small_beauty, (first.base, second.base), tmp_path / "cache.sqlite", balance)
        answered: list[int] = []

        def kill_first_on_first_answer(index: int, generation) -> None:
            answered.append(index)
            if len(answered) == 1:
                first.stop(kill=True)

        run_predict(cfg, tmp_path / "run", on_result=kill_first_on_first_answer)
        assert first.proc.poll() is not None, "the first server was never killed"
        run = json.loads((tmp_path / "run" / "run.json").read_text())
        assert run["failures"] == [] and run["ledger"]["failed"] == 0, run["failures"]
        predictions = load_predictions(tmp_path / "run" / "predictions.jsonl")
        assert len(predictions) == 4 == len(answered)
        # the grammar-constrained answer "### Rating ###\nN" fits in 24 tokens, so every rating is parsed
        assert all(p.rating_pred in (1, 2, 3, 4, 5) and p.rating_source == "parsed" for p in predictions), predictions
        assert run["ledger"]["cache_misses"] == 4

        # The survivor alone; every answer comes from the cache and the outputs are identical.
        run_predict(cfg, tmp_path / "rerun")
        rerun = json.loads((tmp_path / "rerun" / "run.json").read_text())
        assert rerun["ledger"]["cache_hits"] == 4 and rerun["ledger"]["cache_misses"] == 0
        assert load_predictions(tmp_path / "rerun" / "predictions.jsonl") == predictions
    finally:
        first.stop(kill=True)
        second.stop()
