"""Fine-tune a student on SFT rows (paper Section 2.3 and 4.3; Tables 4, 5).

The recipe, after TRL: a frozen config, then load the student (a built-in GGUF name
converted once to a plain checkpoint, a local directory or a hub id), tokenize the rows
with the loss on the target only, wrap with LoRA (or train every weight), and run the
transformers Trainer (Seq2SeqTrainer for T5-style students).

What a run leaves in OUT:
- the student: for LoRA the adapter (``adapter_config.json`` + weights) and tokenizer at the
  top, which `hf/OUT` loads on top of its base, plus ``merged/`` (a plain checkpoint with the
  adapter merged in) unless ``merge=False``; for full fine-tuning the plain checkpoint itself;
- ``checkpoints/checkpoint-N`` every `save_steps` and at the end (``resume=True`` continues the
  last one: optimizer, scheduler, RNG and data position included);
- ``train_log.jsonl`` (one line per optimizer step: loss, learning rate, grad norm),
  ``finetune_config.json`` (the resolved config), ``metrics.json`` and ``run.json``.

`run_finetune` is one process. Started by a launcher as one of N data-parallel processes
(`recsaver.training.distributed`, torchrun, accelerate launch, Ray Train: RANK / WORLD_SIZE in
the environment) it trains its share of every batch through the Trainer's DDP, and only rank 0
writes to OUT (the Trainer too saves checkpoints from rank 0 only).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import store
from ..config.schema import FinetuneConfig
from ..data.records import read_jsonl, write_json, write_jsonl
from ..models import file_sha256
from ..training.rows import load_rows, tokenize_rows
from ..training.trainer import (
    LogHook,
    add_lora,
    build_trainer,
    load_student,
    log_callback,
    process_rank,
    resolve_student,
    training_arguments,
)
from .runs import write_run

# A resumed run must train the same thing: these fields may not change between the runs.
_RESUME_FIXED = ("model", "lora", "lora_alpha", "lora_targets", "full_dropout", "train_sha256", "max_length")


def train_file(cfg: FinetuneConfig) -> Path:
    path = Path(cfg.train)
    return path / store.TRAIN if path.is_dir() else path


def run_finetune(cfg: FinetuneConfig, out: Path, on_log: LogHook | None = None) -> dict[str, Any]:
    """Train, save the student and its records in OUT; return the metrics (losses, steps, timing)."""
    import torch
    from transformers import set_seed
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(out)
    rank, world, local_world = process_rank()
    main = rank == 0
    rows = load_rows(train_file(cfg))
    checkpoints = out / "checkpoints"
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if last and not cfg.resume:
        raise ValueError(f"{out} already holds {Path(last).name}; pass --resume to continue it, "
                         "or choose an empty --out")
    resolved: dict[str, Any] = {**asdict(cfg), "lora_targets": list(cfg.lora_targets),
                                "full_dropout": cfg.dropout if cfg.lora is None else None,
                                "train_sha256": file_sha256(train_file(cfg))}
    if last:
        _check_resumable(out / store.FINETUNE_CONFIG, resolved)

    # N processes on one machine share its cores: each takes its part, not all of them
    threads = cfg.num_threads or (max(1, _cores() // local_world) if local_world > 1 else None)
    if threads:
        torch.set_num_threads(threads)
    set_seed(cfg.seed)  # before the LoRA weights are drawn; the same seed on every rank
    base = resolve_student(cfg.model)
    model, tokenizer, is_seq2seq = load_student(base, cfg.dropout, full=cfg.lora is None)
    tokenized, too_long = tokenize_rows(tokenizer, rows, is_seq2seq, cfg.max_length)
    if not tokenized:
        raise ValueError(f"{train_file(cfg)}: all {len(rows)} rows are longer than --max-length {cfg.max_length} "
                         "tokens; raise it")
    if cfg.lora is not None:
        model = add_lora(model, cfg.lora, cfg.lora_alpha, cfg.dropout, cfg.lora_targets or None, is_seq2seq)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    resolved.update(base_model=base, is_seq2seq=is_seq2seq, rows=len(tokenized), rows_too_long=too_long,
                    trainable_params=trainable, total_params=total)
    log_file = out / store.TRAIN_LOG
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / store.FINETUNE_CONFIG, resolved)
        _restart_log(log_file, _checkpoint_step(last) if last else 0)
    args = training_arguments(
        is_seq2seq, checkpoints, per_device_train_batch_size=cfg.batch, gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps or -1, learning_rate=cfg.lr,
        lr_scheduler_type=cfg.scheduler, warmup_steps=cfg.warmup_steps, weight_decay=0.0,
        save_steps=cfg.save_steps, save_total_limit=2, seed=cfg.seed, data_seed=cfg.seed)
    trainer = build_trainer(model, tokenizer, is_seq2seq, tokenized, args, [log_callback(log_file, on_log)])
    result = trainer.train(resume_from_checkpoint=last)

    if cfg.lora is None:  # every rank calls it; it writes from rank 0 only (after gathering, where sharded)
        trainer.save_model(str(out))
    if not main:  # rank 0 saves the adapter and the records; the others only report
        return _metrics(trainer, result, [h["loss"] for h in trainer.state.log_history if "loss" in h], last,
                        len(tokenized), too_long, trainable, threads)
    if cfg.lora is not None:
        from ..backends.hf import export_plain

        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        if cfg.merge:
            export_plain(model, tokenizer, out / "merged")
    metrics = _metrics(trainer, result, [r["loss"] for r in read_jsonl(log_file)], last, len(tokenized), too_long,
                       trainable, threads)
    write_run(out, step="finetune", config=resolved, data_file=train_file(cfg), metrics=metrics,
              extra={"base_model": base, "is_seq2seq": is_seq2seq, "world_size": world})
    return metrics


def _metrics(trainer: Any, result: Any, losses: list[float], last: str | None, rows: int, too_long: int,
             trainable: int, threads: int | None) -> dict[str, Any]:
    return {
        "global_step": trainer.state.global_step, "train_loss": result.training_loss,
        "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
        "resumed_from_step": _checkpoint_step(last) if last else None,
        "train_runtime_s": result.metrics.get("train_runtime"),
        "steps_per_second": result.metrics.get("train_steps_per_second"),
        "rows": rows, "rows_too_long": too_long, "trainable_params": trainable,
        # processes that trained (the Trainer's view of the process group) and torch threads in each
        "world_size": trainer.args.world_size, "threads_per_process": threads,
    }


def _cores() -> int:
    """CPUs this process may run on (a container or taskset may allow fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _checkpoint_step(checkpoint: str) -> int:
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])


def _restart_log(log_file: Path, step: int) -> None:
    """Keep the log lines up to the checkpoint resumed from (later ones are trained again)."""
    if step and log_file.is_file():
        write_jsonl(log_file, [r for r in read_jsonl(log_file) if r.get("step", 0) <= step])
    elif log_file.exists():
        log_file.unlink()


def _check_resumable(previous: Path, resolved: dict[str, Any]) -> None:
    if not previous.is_file():
        return
    before = json.loads(previous.read_text())
    changed = [k for k in _RESUME_FIXED if k in before and before[k] != resolved[k]]
    if changed:
        raise ValueError(f"{previous}: cannot resume, these settings differ from the checkpointed run: "
                         + ", ".join(f"{k} {before[k]!r} -> {resolved[k]!r}" for k in changed))
