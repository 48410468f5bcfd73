"""The transformers / PEFT side of fine-tuning: load the student, wrap it, build the Trainer.

Kept apart from `recsaver.steps.finetune` (the recipe) so that the benchmark and tests can
reach the same pieces. torch, transformers and peft are imported inside functions only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backends.hf import resolve_model_name

# Config attributes that hold a dropout rate, across the model families we train (T5's
# dropout_rate, Llama/Qwen's attention_dropout, GPT-2's *_pdrop, BERT-style names).
DROPOUT_ATTRS = ("dropout_rate", "dropout", "attention_dropout", "hidden_dropout", "resid_pdrop", "embd_pdrop",
                 "attn_pdrop", "hidden_dropout_prob", "attention_probs_dropout_prob")

LogHook = Callable[[dict[str, Any]], None]


def process_rank() -> tuple[int, int, int]:
    """(rank, world size, processes on this node) of this process in a data-parallel group.

    Every launcher we support (torchrun / elastic_launch, accelerate launch, Ray Train) exports
    RANK, WORLD_SIZE and LOCAL_WORLD_SIZE before the training code runs; alone: (0, 1, 1).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))


def resolve_student(spec: str) -> str:
    """A built-in name (smollm2-135m; converted from its GGUF once), a local dir, or a hub id.

    An ``hf/`` or ``llamacpp/`` prefix is accepted, as users type models for `predict`.
    """
    spec = spec.strip()
    if spec.startswith("hf/"):
        spec = spec[len("hf/"):]
    return resolve_model_name(spec)


def load_student(path: str, dropout: float | None, full: bool) -> tuple[Any, Any, bool]:
    """(model, tokenizer, is_seq2seq). With full fine-tuning, `dropout` replaces the model's own
    dropout rates (the paper trains Flan-T5 with 0.25); with LoRA it is the adapter's dropout
    and the frozen base keeps its own."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    config = AutoConfig.from_pretrained(path)
    if full and dropout is not None:
        for attr in DROPOUT_ATTRS:
            if isinstance(getattr(config, attr, None), float):
                setattr(config, attr, float(dropout))
    is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    auto = AutoModelForSeq2SeqLM if is_seq2seq else AutoModelForCausalLM
    model = auto.from_pretrained(path, config=config)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:  # batches need a pad token; labels there are ignored anyway
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return model, tokenizer, is_seq2seq


def add_lora(model: Any, rank: int, alpha: int | None, dropout: float, targets: tuple[str, ...] | None,
             is_seq2seq: bool) -> Any:
    """Wrap `model` with a LoRA adapter; targets default to PEFT's per-architecture choice (q, v)."""
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha or 2 * rank, lora_dropout=dropout,
                        target_modules=list(targets) if targets else None,
                        task_type=TaskType.SEQ_2_SEQ_LM if is_seq2seq else TaskType.CAUSAL_LM)
    return get_peft_model(model, config)


def log_callback(log_file: Path, on_log: LogHook | None) -> Any:
    """A TrainerCallback that appends every loss record to `log_file` (one JSON line, flushed)
    and passes it to `on_log` (the CLI's progress bar). In a data-parallel run only the main
    process writes: the logged loss is already the mean over all processes."""
    from transformers import TrainerCallback

    started = time.perf_counter()

    class _Log(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if not logs or "loss" not in logs or not state.is_world_process_zero:
                return
            row = {"step": state.global_step, "max_steps": state.max_steps, "epoch": state.epoch,
                   "loss": logs["loss"], "learning_rate": logs.get("learning_rate"),
                   "grad_norm": logs.get("grad_norm"), "seconds": round(time.perf_counter() - started, 3)}
            with open(log_file, "a") as f:
                f.write(json.dumps(row) + "\n")
            if on_log:
                on_log(row)

    return _Log()


def training_arguments(is_seq2seq: bool, output_dir: Path, **kwargs: Any) -> Any:
    """TrainingArguments (Seq2SeqTrainingArguments for encoder-decoders) with our fixed choices:
    log every step, no reporting services, no tqdm (the CLI draws its own bar), rows kept as
    given (they are already tokenized), mixed precision only where a GPU supports bf16.

    Launched as one of several processes (WORLD_SIZE > 1), the Trainer wraps the model in DDP
    and shards the rows per epoch between the processes. The communication backend is named:
    gloo on CPU (left open, accelerate picks MPI wherever torch was built with it, which needs
    an mpirun launch) and NCCL on GPU.
    """
    import torch
    from transformers import Seq2SeqTrainingArguments, TrainingArguments

    cuda = torch.cuda.is_available()
    if process_rank()[1] > 1:
        kwargs.setdefault("ddp_backend", "nccl" if cuda else "gloo")
    cls = Seq2SeqTrainingArguments if is_seq2seq else TrainingArguments
    return cls(output_dir=str(output_dir), logging_steps=1, report_to="none", disable_tqdm=True,
               remove_unused_columns=False, save_strategy="steps", use_cpu=not cuda,
               bf16=cuda and torch.cuda.is_bf16_supported(), dataloader_num_workers=0, **kwargs)


def build_trainer(model: Any, tokenizer: Any, is_seq2seq: bool, rows: list[dict[str, list[int]]], args: Any,
                  callbacks: list[Any]) -> Any:
    """Trainer (Seq2SeqTrainer for encoder-decoders) with a collator that pads labels with -100.

    Encoder-decoders build their decoder inputs from the labels themselves (shifted right).
    """
    from transformers import DataCollatorForSeq2Seq, PrinterCallback, Seq2SeqTrainer, Trainer

    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True)
    cls = Seq2SeqTrainer if is_seq2seq else Trainer
    trainer = cls(model=model, args=args, train_dataset=rows, data_collator=collator, processing_class=tokenizer,
                  callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; our callback logs instead
    return trainer
