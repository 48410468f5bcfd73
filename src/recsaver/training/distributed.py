"""`recsaver finetune --nproc N [--executor ray]`: the same `run_finetune`, in N data-parallel processes.

`run_finetune` stays the unit: each process runs it whole, the transformers Trainer reads the
launcher's RANK / LOCAL_RANK / WORLD_SIZE, wraps the model in DDP (gloo on CPU, NCCL on GPU)
and shards the rows between the processes; only rank 0 writes OUT. This module only starts
the processes and turns a failed one into an error that names its rank.

- ``--executor local`` (one machine): torch's elastic launcher, called as a function
  (`torch.distributed.launcher.api.elastic_launch`, what ``torchrun --standalone`` runs), not
  ``python -m torch.distributed.run`` in a subprocess. The same launcher either way, but called
  in process it hands back each rank's return value (rank 0's metrics, no file to re-read) and
  each failure as a `ProcessFailure` with the rank and the worker's own exception text, where a
  subprocess would leave us parsing its log. Workers are spawned, so they start clean of
  whatever the calling process (a CLI, a notebook, pytest) already set up.
- ``--executor ray``: `ray.train.torch.TorchTrainer` with `--nproc` workers (a GPU each where
  the cluster has GPUs). Ray Train creates the process group and exports RANK, LOCAL_RANK,
  WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT before the loop runs (Ray 2.60,
  ray/train/torch/config.py); the Trainer's accelerate state finds the group already there and
  uses it. Every worker writes to OUT by its path, so on a cluster of several nodes OUT must be
  on a filesystem they all share (NFS, a mounted bucket); Ray Train's own records go to OUT/ray.
- Already inside a launched group (``torchrun -m recsaver.cli finetune``, ``accelerate launch``)
  nothing is launched again: this process is one of the N and runs `run_finetune` itself.

Progress: with N processes the losses come from OUT/train_log.jsonl, which rank 0 appends to
after every step; `follow_log` reads it as it grows and feeds the same `on_log` hook.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import store
from ..config.schema import FinetuneConfig
from .trainer import LogHook, process_rank


class WorkerError(RuntimeError):
    """A training process failed; the message names its rank and the error it raised."""


def train(cfg: FinetuneConfig, out: Path, on_log: LogHook | None = None) -> dict[str, Any]:
    """Fine-tune in this process, or in `cfg.nproc` processes here or on Ray; rank 0's metrics."""
    from ..steps.finetune import run_finetune

    out = Path(out)
    if process_rank()[1] > 1 or (cfg.nproc == 1 and cfg.executor == "local"):
        return run_finetune(cfg, out, on_log)
    with follow_log(out / store.TRAIN_LOG, on_log):
        return _on_ray(cfg, out) if cfg.executor == "ray" else _on_this_machine(cfg, out)


def _worker(cfg: FinetuneConfig, out: str) -> dict[str, Any]:
    """One launched process (module level: spawned workers import it by name)."""
    from ..steps.finetune import run_finetune

    return run_finetune(cfg, Path(out))


def _on_this_machine(cfg: FinetuneConfig, out: Path) -> dict[str, Any]:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # torchrun --standalone: a c10d rendezvous on a free local port, a fresh run id, no restarts
    # (a failed step would fail the same way again; --resume is the restart)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=cfg.nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.5)
    try:
        results = elastic_launch(config, _worker)(cfg, str(out))
    except ChildFailedError as e:
        failures = {rank: _message(f.message) for rank, f in e.failures.items()}
        raise WorkerError(_failed(failures)) from None
    return dict(results[0])


def _ray_loop(config: dict[str, Any]) -> None:
    """Ray Train's loop on each worker: the env and the process group are Ray's by now."""
    _worker(config["cfg"], config["out"])


def _on_ray(cfg: FinetuneConfig, out: Path) -> dict[str, Any]:
    from ..backends.ray_pool import connect

    owns = connect(cfg.ray_address)
    import ray
    from ray.train import RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.torch import TorchTrainer

    try:
        cfg, out = _absolute(cfg), out.resolve()  # Ray Train workers run in a directory of their own
        gpus = ray.cluster_resources().get("GPU", 0) >= 1  # the workers' devices, not this process's
        trainer = TorchTrainer(_ray_loop, train_loop_config={"cfg": cfg, "out": str(out)},
                               scaling_config=ScalingConfig(num_workers=cfg.nproc, use_gpu=gpus),
                               run_config=RunConfig(name=f"finetune-{uuid.uuid4().hex[:8]}",
                                                    storage_path=str(out / "ray")))
        try:
            trainer.fit()
        except TrainingFailedError as e:
            failures = getattr(e, "worker_failures", None) or {-1: e}
            raise WorkerError(_failed({rank: _message(err) for rank, err in failures.items()})) from None
    finally:
        if owns:
            ray.shutdown()
    return dict(json.loads((out / store.METRICS).read_text()))  # rank 0 wrote it; Ray returns nothing


def _absolute(cfg: FinetuneConfig) -> FinetuneConfig:
    """The config with its local paths (the rows, a model folder) made absolute."""
    model = cfg.model.removeprefix("hf/")
    if Path(model).expanduser().exists():
        model = str(Path(model).expanduser().resolve())
    else:
        model = cfg.model  # a built-in name or a hub id
    return replace(cfg, train=str(Path(cfg.train).expanduser().resolve()), model=model)


def _message(error: Any) -> str:
    """A worker's error as "Type: text": elastic's error file holds {"message": "Type: text", ...}; Ray
    hands back the exception itself. Where only a traceback is left, its last line is that same line."""
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    elif isinstance(error, dict):
        error = error.get("message", error)
    text = str(error).strip()
    if "Traceback (most recent call last)" in text:
        text = text.splitlines()[-1].strip()
    return text or "no error text (killed by a signal, or out of memory?)"


def _failed(failures: dict[int, str]) -> str:
    """One line per distinct error, naming the ranks that raised it (often all raise the same)."""
    by_text: dict[str, list[int]] = {}
    for rank, text in sorted(failures.items()):
        by_text.setdefault(text, []).append(rank)
    return "; ".join(f"finetune {_ranks(ranks)} failed: {text}" for text, ranks in by_text.items())


def _ranks(ranks: list[int]) -> str:
    if ranks == [-1]:
        return "on Ray"
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))


@contextmanager
def follow_log(log_file: Path, on_log: LogHook | None, every_s: float = 0.5) -> Iterator[None]:
    """Pass each line rank 0 appends to `log_file` to `on_log`, from a thread, until the block ends."""
    if on_log is None:
        yield
        return
    stop = threading.Event()
    seen = 0

    def poll() -> None:
        nonlocal seen
        if not log_file.is_file():
            return
        lines = [line for line in log_file.read_text().split("\n")[:-1] if line.strip()]  # whole lines only
        seen = min(seen, len(lines))  # a resumed run rewrites the log up to its checkpoint first
        for line in lines[seen:]:
            on_log(json.loads(line))
        seen = len(lines)

    def loop() -> None:
        while not stop.wait(every_s):
            poll()

    thread = threading.Thread(target=loop, name="follow-train-log", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        poll()  # the last steps
