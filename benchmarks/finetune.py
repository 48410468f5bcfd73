"""Training throughput of `recsaver finetune` against a plain transformers Trainer, measured in one run.

Both train the same student (the built-in SmolLM2-135M, converted once from its GGUF) with
the same LoRA config, learning rate, batch, seed, step count and checkpoint schedule, on
the same SFT rows (real Beauty examples, history cut to `--history` items, a short written
reasoning + the gold rating). Each side is timed end to end: load the student, tokenize,
train, save. The plain side is what a user would write by hand: `apply_chat_template` on
the whole conversation, the prompt masked by its length, `Trainer.train()`, `save_pretrained`.
The two sides alternate (`--repeats` rounds) and the fastest round of each counts, which
damps the noise of a shared CPU. Ratio = ours steps/s / plain steps/s (goal >= 0.95).

Run: nice -n 15 .venv/bin/python benchmarks/finetune.py [--steps 8] [--repeats 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from recsaver.data.prepare import PrepareConfig, prepare
from recsaver.data.records import load_examples, write_jsonl
from recsaver.data.sources import FieldCaps
from recsaver.steps.distill import build_sft
from recsaver.steps.finetune import FinetuneConfig, run_finetune
from recsaver.training.rows import load_rows
from recsaver.training.trainer import resolve_student

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "finetune.json"


def sft_rows(tmp: Path, history: int) -> Path:
    """An SFT folder from real Beauty train examples (2 per label), built by `build_sft`."""
    data = tmp / "beauty"
    caps = FieldCaps(title=80, description=120, review_title=60, review_text=160)
    prepare(SHARED / "amazon2023/All_Beauty/reviews.jsonl.gz", SHARED / "amazon2023/All_Beauty/meta.jsonl.gz", data,
            PrepareConfig(domain="beauty", train_per_label=2, test_per_label=1, caps=caps))
    examples = [replace(e, history=e.history[-history:]) for e in load_examples(data / "train.jsonl")]
    td = tmp / "teacher"
    write_jsonl(td / "examples.jsonl", (e.to_dict() for e in examples))
    write_jsonl(td / "samples.jsonl", (
        {"example_id": e.example_id, "sample": 0, "rating_true": e.rating, "teacher_rating": e.rating,
         "reasoning": f"The user gave {e.history[-1].item.title} {e.history[-1].rating} stars; the new item is "
                      "similar, so the rating should be close to that."} for e in examples))
    build_sft(td, "none", tmp / "sft")
    return tmp / "sft"


def ours(cfg: FinetuneConfig, out: Path) -> float:
    t = time.perf_counter()
    run_finetune(cfg, out)
    return time.perf_counter() - t


def plain(cfg: FinetuneConfig, out: Path) -> float:
    """The hand-written baseline: same model, LoRA config, rows, arguments and checkpoints."""
    t = time.perf_counter()
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    set_seed(cfg.seed)
    path = resolve_student(cfg.model)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    model = get_peft_model(model, LoraConfig(r=cfg.lora, lora_alpha=2 * cfg.lora, lora_dropout=cfg.dropout,
                                             task_type=TaskType.CAUSAL_LM))
    rows = []
    for row in load_rows(Path(cfg.train)):
        head = tok.apply_chat_template(row["messages"][:1], add_generation_prompt=True)
        full = tok.apply_chat_template(row["messages"])
        head, full = list(getattr(head, "input_ids", head)), list(getattr(full, "input_ids", full))
        rows.append({"input_ids": full, "attention_mask": [1] * len(full),
                     "labels": [-100] * len(head) + full[len(head):]})
    args = TrainingArguments(output_dir=str(out / "checkpoints"), per_device_train_batch_size=cfg.batch,
                             max_steps=cfg.max_steps, learning_rate=cfg.lr, logging_steps=1, report_to="none",
                             disable_tqdm=True, remove_unused_columns=False, save_strategy="steps",
                             save_steps=cfg.save_steps, seed=cfg.seed, data_seed=cfg.seed, use_cpu=True)
    trainer = Trainer(model=model, args=args, train_dataset=rows, processing_class=tok,
                      data_collator=DataCollatorForSeq2Seq(tok, label_pad_token_id=-100, padding=True))
    trainer.train()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--history", type=int, default=3, help="History items kept per example (row length).")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both sides.")
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    resolve_student(args.model)  # convert once, outside the timings
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {"ours": [], "plain": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sft = sft_rows(tmp, args.history)
        cfg = FinetuneConfig(train=str(sft), model=args.model, lora=8, max_steps=args.steps, save_steps=args.steps,
                             merge=False, dropout=0.25, lr=1e-4)
        for k in range(args.repeats):
            times["plain"].append(plain(cfg, tmp / f"plain{k}"))
            times["ours"].append(ours(cfg, tmp / f"ours{k}"))
            print(f"round {k + 1}: plain {times['plain'][-1]:.1f} s, ours {times['ours'][-1]:.1f} s", flush=True)
        rows = len(load_rows(sft))
    best = {k: min(v) for k, v in times.items()}
    result = {
        "model": args.model, "lora_rank": 8, "steps": args.steps, "rows": rows, "history_items": args.history,
        "threads": args.threads, "repeats": args.repeats, "seconds": times,
        "steps_per_s": {k: round(args.steps / v, 4) for k, v in best.items()},
        "ratio": round(best["plain"] / best["ours"], 3),
        "load_avg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }
    print(f"recsaver finetune {result['steps_per_s']['ours']} steps/s, plain Trainer "
          f"{result['steps_per_s']['plain']} steps/s: ratio {result['ratio']} (goal >= 0.95)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
