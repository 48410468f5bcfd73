"""`--executor ray` on a real two-node Ray cluster started by the test on 127.0.0.1 (ray.cluster_utils.Cluster:
a head node and a worker node, 1 CPU each, each with its own raylet and worker processes), real SmolLM2 and real
Beauty examples: the same predictions as `--executor local`, one actor per node; the worker node killed mid-run
and the run still complete, nothing lost or duplicated; a rerun served from the driver's cache."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from recsaver.cache import count_generations
from recsaver.cli import app

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")
N = 5
# --parallel 1: one request per chunk, so results stream back (and the kill lands) one by one, and the
# outputs are those of llama.cpp's one-sequence path in both executors.
PREDICT = ["predict", "--limit", str(N), "--max-tokens", "24", "--parallel", "1", "--no-progress"]


@pytest.fixture
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    # Quick failure detection, so a killed node is noticed in seconds rather than half a minute.
    system = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 3}
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": system})
    c.worker = c.add_node(num_cpus=1)
    c.wait_for_nodes()
    try:
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def predict(small_beauty: Path, out: Path, cache: Path, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, [*PREDICT, "--data", str(small_beauty), "--cache", str(cache),
                                      "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return json.loads((out / "run.json").read_text())


def test_ray_matches_local_and_survives_a_dead_node(cluster: Any, small_beauty: Path, tmp_path: Path) -> None:
    local = tmp_path / "local"
    predict(small_beauty, local, tmp_path / "local.sqlite")
    want = (local / "predictions.jsonl").read_bytes()

    # Two nodes, one actor each: the same predictions, byte for byte.
    both = tmp_path / "both"
    run = predict(small_beauty, both, tmp_path / "both.sqlite", "--executor", "ray", "--ray-address", cluster.address)
    assert (both / "predictions.jsonl").read_bytes() == want
    assert run["ledger"]["cache_misses"] == N and run["status"] == "complete"

    # The worker node is killed (raylet, its actor, everything) once two results are in the driver's cache.
    cache, killed = tmp_path / "kill.sqlite", threading.Event()

    def kill_worker() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if cache.exists() and count_generations(cache) >= 2:
                cluster.remove_node(cluster.worker, allow_graceful=False)
                killed.set()
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_worker, daemon=True)
    killer.start()
    survived = tmp_path / "survived"
    run = predict(small_beauty, survived, cache, "--executor", "ray", "--ray-address", cluster.address)
    killer.join(timeout=5)
    assert killed.is_set(), "the run ended before the worker node could be killed"
    assert run["status"] == "complete" and run["failed_calls"] == 0
    assert (survived / "predictions.jsonl").read_bytes() == want  # nothing lost, nothing twice, same answers
    assert count_generations(cache) == N  # each request cached once
    alive = [n for n in ray.nodes() if n["Alive"]] if ray.is_initialized() else None
    assert alive is None or len(alive) == 1

    # A rerun on the head node alone is served from the cache: no request leaves the driver.
    again = predict(small_beauty, tmp_path / "again", cache, "--executor", "ray", "--ray-address", cluster.address)
    assert again["ledger"]["cache_hits"] == N and again["ledger"]["cache_misses"] == 0
    assert (tmp_path / "again" / "predictions.jsonl").read_bytes() == want


def test_no_cluster_is_a_clear_error(small_beauty: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [*PREDICT, "--data", str(small_beauty), "--cache", str(tmp_path / "c.sqlite"),
                                      "--out", str(tmp_path / "out"), "--executor", "ray", "--ray-address",
                                      "127.0.0.1:1"])
    assert result.exit_code == 2 and "--ray-address 127.0.0.1:1" in result.output
