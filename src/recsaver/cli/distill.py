"""`recsaver distill sample|build` and `recsaver finetune`: fine-tuning with reasoning (Section 2.3, 4.3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from ..config.schema import DistillSampleConfig, FinetuneConfig
from .common import (
    FormatOpt,
    OutputFormat,
    err_console,
    exit_if_incomplete,
    friendly_errors,
    generation_progress,
    out_console,
    write_formats,
)
from .options import with_config


def register(app: typer.Typer) -> None:
    distill_app = typer.Typer(help="Teacher reasoning samples -> fine-tuning rows (paper Section 2.3).",
                              no_args_is_help=True)
    distill_app.command("sample")(distill_sample)
    distill_app.command("build")(distill_build)
    app.add_typer(distill_app, name="distill")
    app.command("finetune")(finetune)


@friendly_errors
@with_config(DistillSampleConfig)
def distill_sample(
    cfg: DistillSampleConfig,
    out: Path = typer.Option(..., help="Teacher folder (TD): samples.jsonl, examples.jsonl, summary.json, run.json."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    format: FormatOpt = OutputFormat.jsonl,
) -> None:
    """M teacher reasoning samples per example, cached and resumable."""
    from ..steps.distill import run_distill_sample

    with generation_progress(progress) as (on_start, on_result):
        summary = run_distill_sample(cfg, out, on_result=on_result, on_start=on_start)
    out_console.print(
        f"{summary['samples']} samples for {summary['examples']} examples; format held in "
        f"{summary['format_ok_share']:.0%}, teacher rating exact in {summary['teacher_exact_share']:.0%}; "
        "kept per filter: " + ", ".join(f"{k} {v}" for k, v in summary["kept_per_filter"].items()), highlight=False)
    out_console.print(f"wrote {out}/samples.jsonl, examples.jsonl, summary.json, run.json")
    write_formats(out, format)
    exit_if_incomplete(out)


@friendly_errors
def distill_build(
    teacher: Path = typer.Option(..., help="Teacher folder from `recsaver distill sample`."),
    filter: str = typer.Option("none", help="none | 5-class | binary | 1-off (Section 4.3)."),
    rating_only: bool = typer.Option(False, help="Rows without reasoning: direct prompt, target the gold rating."),
    out: Path = typer.Option(..., help="SFT folder: train.jsonl, stats.json, run.json."),
    format: FormatOpt = OutputFormat.jsonl,
) -> None:
    """Training rows: teacher reasoning + gold rating, rendered by the inference PromptBuilder."""
    from rich.table import Table

    from ..steps.distill import build_sft

    stats = build_sft(teacher, filter, out, rating_only=rating_only)
    table = Table(title=f"kept samples per gold label ({stats['samples']} samples, {stats['examples']} examples)")
    labels = ["1", "2", "3", "4", "5", "total"]
    for col in ["filter", *labels]:
        table.add_column(col, justify="left" if col == "filter" else "right")
    for name, counts in stats["kept_per_filter"].items():
        mark = " *" if (name == filter and not rating_only) else ""
        table.add_row(name + mark, *(str(counts[k]) for k in labels))
    out_console.print(table)
    if stats["dropped"]:
        out_console.print("dropped before filtering: " + ", ".join(f"{k} {v}" for k, v in stats["dropped"].items()),
                          highlight=False)
    out_console.print(f"wrote {stats['rows']} {stats['target']} rows to {out}/train.jsonl")
    write_formats(out, format)


@friendly_errors
@with_config(FinetuneConfig)
def finetune(
    cfg: FinetuneConfig,
    ctx: typer.Context,
    out: Path = typer.Option(..., help="Output folder: the student, checkpoints/, train_log.jsonl, run.json."),
    full: bool = typer.Option(False, help="Train every weight instead of a LoRA adapter."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    format: FormatOpt = OutputFormat.jsonl,
) -> None:
    """Fine-tune a student (LoRA or full) on SFT rows; loss on the target tokens only."""
    from dataclasses import replace

    from ..training.distributed import WorkerError, train
    from ..training.trainer import process_rank
    from .options import given_on_line

    if full:
        if given_on_line(ctx, "lora"):
            raise ValueError("give either --lora RANK or --full, not both")
        cfg = replace(cfg, lora=None)
    main = process_rank()[0] == 0  # under torchrun / accelerate launch every rank runs this command
    try:
        with _loss_progress(progress and main) as on_log:
            metrics = train(cfg, out, on_log=on_log)
    except WorkerError as e:  # a training process failed: its rank and error, exit 1
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(1) from None
    if not main:
        return
    processes = f", {metrics['world_size']} processes" if metrics.get("world_size", 1) > 1 else ""
    out_console.print(
        f"{metrics['global_step']} steps, loss {metrics['first_loss']:.3f} -> {metrics['last_loss']:.3f} "
        f"({metrics['rows']} rows, {metrics['rows_too_long']} too long{processes})", highlight=False)
    out_console.print(f"wrote the student to {out} (use it as --model hf/{out})")
    write_formats(out, format)


@contextmanager
def _loss_progress(enabled: bool) -> Iterator[Any]:
    """A bar over optimizer steps that shows the latest loss."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("training"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeRemainingColumn(), TextColumn("loss {task.fields[loss]}"), console=err_console)
    task: dict[str, Any] = {}

    def on_log(row: dict[str, Any]) -> None:
        if "id" not in task:
            task["id"] = bar.add_task("training", total=row["max_steps"], loss="")
        bar.update(task["id"], completed=row["step"], total=row["max_steps"], loss=f"{row['loss']:.4f}")

    with bar:
        yield on_log
