"""Data-parallel `recsaver finetune --nproc 2` against one process, measured in one run.

Both sides train the same student with the same LoRA config, rows, learning rate, seed and
step count, through `recsaver.training.distributed.train` (what the CLI calls). One process
uses the torch default threads (every core; `--threads` to choose); `--nproc 2` starts two
DDP processes (gloo) that split the cores between them. A step of N processes takes N x `--batch` rows, so the
figures are steps/s and rows/s of the Trainer's own loop (`train_steps_per_second`: no process
start, model load or save) and seconds end to end (those included). The sides alternate
(`--repeats` rounds) and the fastest round of each counts, which damps the noise of a shared
CPU. Ratio = nproc steps/s (rows/s) / one-process steps/s (rows/s). A figure, not a goal.

Run: nice -n 15 .venv/bin/python benchmarks/finetune_nproc.py [--steps 6] [--repeats 1] [--nproc 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from finetune import sft_rows  # benchmarks/finetune.py: the same real Beauty SFT rows

from recsaver.steps.finetune import FinetuneConfig
from recsaver.training.distributed import train
from recsaver.training.rows import load_rows
from recsaver.training.trainer import resolve_student

RESULTS = Path(__file__).resolve().parent / "results" / "finetune_nproc.json"


def timed(cfg: FinetuneConfig, out: Path) -> tuple[float, dict]:
    t = time.perf_counter()
    metrics = train(cfg, out)
    return time.perf_counter() - t, metrics


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--history", type=int, default=3, help="History items kept per example (row length).")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads of the one-process side (default: torch's, every core).")
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args()

    import torch

    resolve_student(args.model)  # convert once, outside the timings
    load_before = os.getloadavg()[0]
    sides = {1: "one process", args.nproc: f"--nproc {args.nproc}"}
    seconds: dict[int, list[float]] = {n: [] for n in sides}
    loop_steps_per_s: dict[int, list[float]] = {n: [] for n in sides}
    threads: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sft = sft_rows(tmp, args.history)
        for k in range(args.repeats):
            for n in sides:
                cfg = FinetuneConfig(train=str(sft), model=args.model, lora=8, max_steps=args.steps,
                                     save_steps=args.steps, merge=False, batch=args.batch, nproc=n,
                                     num_threads=args.threads if n == 1 else None)
                s, metrics = timed(cfg, tmp / f"n{n}-{k}")
                assert metrics["world_size"] == n, metrics
                seconds[n].append(round(s, 2))
                loop_steps_per_s[n].append(metrics["steps_per_second"])
                threads[n] = metrics["threads_per_process"] or torch.get_num_threads()
                print(f"round {k + 1}, {sides[n]}: {s:.1f} s end to end, {metrics['steps_per_second']} steps/s "
                      "in the training loop", flush=True)
        rows = len(load_rows(sft))
    steps_per_s = {n: max(v) for n, v in loop_steps_per_s.items()}
    rows_per_s = {n: round(v * n * args.batch, 4) for n, v in steps_per_s.items()}
    result = {
        "model": args.model, "lora_rank": 8, "steps": args.steps, "batch": args.batch, "rows": rows,
        "history_items": args.history, "cores": os.cpu_count(), "repeats": args.repeats,
        "threads_per_process": {sides[n]: v for n, v in threads.items()},
        "seconds_end_to_end": {sides[n]: v for n, v in seconds.items()},
        "loop_steps_per_s": {sides[n]: v for n, v in steps_per_s.items()},
        "loop_rows_per_s": {sides[n]: v for n, v in rows_per_s.items()},
        "ratio_steps_per_s": round(steps_per_s[args.nproc] / steps_per_s[1], 3),
        "ratio_rows_per_s": round(rows_per_s[args.nproc] / rows_per_s[1], 3),
        "ratio_end_to_end": round(min(seconds[1]) / min(seconds[args.nproc]), 3),
        "load_avg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }
    print(f"| {args.model} LoRA-8 | {args.steps} steps | one process {steps_per_s[1]} steps/s "
          f"({rows_per_s[1]} rows/s) | --nproc {args.nproc} {steps_per_s[args.nproc]} steps/s "
          f"({rows_per_s[args.nproc]} rows/s) | ratio steps/s {result['ratio_steps_per_s']}, rows/s "
          f"{result['ratio_rows_per_s']}, end to end {result['ratio_end_to_end']} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
