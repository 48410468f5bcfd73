"""What every command shares: options, one-line errors, progress bars, consoles. Command modules import from here."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

# Not a terminal (a pipe, a file, $(...)): lines are never wrapped, so a printed path, id or link
# stays one line a script can read. On a terminal rich wraps to its width as usual.
out_console = Console(soft_wrap=not sys.stdout.isatty())
err_console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())

# Options of the commands whose options are not generated from a step config (baseline, distill build).
DataOpt = Annotated[Path, typer.Option(help="Folder written by `recsaver data prepare`.")]
LimitOpt = Annotated[int | None, typer.Option(help="Use only the first N examples.")]
# Every step that writes records: JSONL always (the run's record: resume and every reader use it), and with
# `parquet` also <table>.parquet beside each JSONL table, the same rows.
class OutputFormat(str, Enum):
    jsonl = "jsonl"
    parquet = "parquet"


FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="Records as JSONL, or also as Parquet beside "
                                                                  "each JSONL table (same rows).")]


def write_formats(folder: Path, fmt: str | OutputFormat, recursive: bool = False) -> None:
    """After a step: with `--format parquet`, the Parquet copies of its tables, and one line naming them."""
    from ..parquet import check_format, write_parquet_tables

    if check_format(str(getattr(fmt, "value", fmt))) != "parquet" or not folder.is_dir():
        return
    written = write_parquet_tables(folder, recursive=recursive)
    if written:
        names = ", ".join(sorted({p.name for p in written}))
        out_console.print(f"wrote {len(written)} Parquet file(s) ({names}) under {folder}", highlight=False)


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Known failures print one clear line and exit 2; no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..data.sources import BadInputError
        from ..models import ModelError

        try:
            return func(*args, **kwargs)
        except (BadInputError, ModelError, FileNotFoundError, ValueError, OSError) as e:
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


@contextmanager
def byte_progress(enabled: bool = True) -> Iterator[Callable[[str, int, int], None] | None]:
    if not enabled:
        yield None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                   console=err_console, transient=False)
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total or None)
        bar.update(tasks[phase], completed=done)

    with bar:
        yield update


def print_metrics(result: dict[str, Any], title: str) -> None:
    from ..reports import metrics_table

    out_console.print(metrics_table(result, title))


@contextmanager
def generation_progress(enabled: bool = True) -> Iterator[tuple[Any, Any]]:
    """A bar over model calls with ETA and fresh completion tokens per second."""
    import time

    if not enabled:
        yield None, None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeRemainingColumn(), TextColumn("{task.fields[rate]}"), console=err_console)
    state: dict[str, Any] = {"task": None, "tokens": 0, "start": time.perf_counter()}

    def on_start(total: int) -> None:
        state["task"] = bar.add_task("generating", total=total, rate="")
        state["start"] = time.perf_counter()

    def on_result(_: int, generation: Any) -> None:
        if not generation.cached:
            state["tokens"] += generation.completion_tokens
        elapsed = max(time.perf_counter() - state["start"], 1e-6)
        bar.update(state["task"], advance=1, rate=f"{state['tokens'] / elapsed:.1f} tok/s")

    with bar:
        yield on_start, on_result


@contextmanager
def count_progress(enabled: bool, what: str) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    bar = Progress(TextColumn(what), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn(),
                   console=err_console)
    task: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "id" not in task:
            task["id"] = bar.add_task(what, total=total)
        bar.update(task["id"], completed=done)

    with bar:
        yield update


def exit_if_incomplete(run_folder: Path) -> None:
    """After a step: when RUN/run.json says some model calls failed, say how many and why, and exit 3.

    A failed call is never scored as an answer (see steps/runs.py); this is where the user hears of it.
    """
    from ..steps.runs import EXIT_INCOMPLETE
    from ..store import RunStore

    store = RunStore(run_folder)
    path, run = store.run_path, store.read_run()
    if run is None or run.get("status") != "incomplete":
        return
    errors = run.get("errors") or {}
    top = "; ".join(f"{n}x {e}" for e, n in list(errors.items())[:3])
    err_console.print(
        f"[bold yellow]warning:[/] {run.get('failed_calls')} of {run.get('requests')} model calls failed "
        f"({top}). The run is incomplete: {path} says so, failed examples are marked status=failed and left "
        f"out of every metric. Once the engine works, run the same command again: only the failed calls "
        "are made again.",
        highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INCOMPLETE)
