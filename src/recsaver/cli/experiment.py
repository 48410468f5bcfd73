"""`recsaver experiment run CONFIG`: the grids that reproduce the paper's tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from .common import (
    FormatOpt,
    OutputFormat,
    count_progress,
    err_console,
    friendly_errors,
    generation_progress,
    out_console,
    write_formats,
)

experiment_app = typer.Typer(help="Experiment grids that reproduce the paper's tables.", no_args_is_help=True)


@experiment_app.command("run")
@friendly_errors
def experiment_run(
    config: Path = typer.Argument(..., help="An experiment config, e.g. configs/table3.yaml."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: --set predict.limit=5 (repeatable)."),
    out: Path | None = typer.Option(None, help="Experiment folder (default: the config's `out`, else "
                                                  "runs/<name>)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    format: FormatOpt = OutputFormat.jsonl,
) -> None:
    """Run (or resume) every cell of the grid, then write the paper tables into the experiment folder."""
    from ..config import load_config

    cfg = load_config(config, set_)
    folder = out or Path(cfg.out or f"runs/{cfg.name}")
    record = run_grid(cfg, folder, progress)
    write_formats(folder, format, recursive=True)
    exit_for(record, folder, empty_pools_fail=True)


def run_grid(cfg: Any, folder: Path, progress: bool, run: Callable[..., dict[str, Any]] | None = None
             ) -> dict[str, Any]:
    """Run (or resume) a grid with progress bars, then print what ran and the paper tables."""
    from ..steps.experiment import Hooks, run_experiment

    def on_cell(k: int, total: int, cell: Any, status: str) -> None:
        tag = "[dim]skip (done, same config)[/]" if status == "skipped" else "[bold]run[/]"
        err_console.print(f"[cyan]cell {k}/{total}[/] {cell.name} ({cell.kind}) {tag}", highlight=False)

    @contextmanager
    def generation() -> Iterator[Any]:
        with generation_progress(progress) as hooks:
            yield hooks

    @contextmanager
    def examples(what: str) -> Iterator[Any]:
        with count_progress(progress, what) as update:
            yield update

    record = (run or run_experiment)(cfg, folder, Hooks(on_cell=on_cell, generation=generation, examples=examples))
    ran = sum(c["status"] != "skipped" for c in record["cells"])
    out_console.print(f"{len(record['cells'])} cells ({ran} ran, {len(record['cells']) - ran} skipped); "
                      f"config hash {record['config_hash']}")
    for path in record["tables"]:
        out_console.print(f"wrote {path}", highlight=False)
    md = Path(folder) / "tables.md"
    if md.exists():
        out_console.print(md.read_text(), markup=False, highlight=False, soft_wrap=True)
    say_quality_warnings(record, folder)
    return record


def say_quality_warnings(record: dict[str, Any], folder: Path) -> None:
    """Each prediction cell's degenerate-output warnings (steps/predict.py quality_warnings) and each reference
    pool's missing gold ratings, as `predict` and `references` say them."""
    from ..store import RunStore
    from .references import one_sided_pool

    for cell in record["cells"]:
        store = RunStore(Path(folder) / cell["name"])
        if cell["kind"] == "predict":
            warnings = (store.read_metrics() or {}).get("warnings", [])
        elif cell["kind"] == "references":
            summary = store.read_summary()
            one_sided = one_sided_pool(summary) if summary else None
            warnings = [one_sided] if one_sided else []
        else:
            continue
        for w in warnings:
            err_console.print(f"[bold yellow]warning:[/] {cell['name']}: {w}", highlight=False, soft_wrap=True)


def exit_for(record: dict[str, Any], folder: Path, empty_pools_fail: bool) -> None:
    """Say which cells have empty pools or failed calls; exit 3 for failed calls, 2 for empty pools
    (or only warn about them, for the demo, whose small default model often verifies nothing)."""
    from ..steps.experiment import empty_pool_cells, incomplete_cells
    from ..steps.runs import EXIT_INCOMPLETE
    from ..store import RUN, RunStore

    empty, incomplete = empty_pool_cells(record), incomplete_cells(record)
    if empty:
        say_cells("error" if empty_pools_fail else "warning", empty,
                  "had every reference pool empty and have no reasoning scores",
                  f"{RunStore(folder).sub(empty[0]).cell_path} says why: verification kept no explanation. Set "
                  "references.verify to 1-off, calibrated or none (`recsaver references audit` compares them on the "
                  "stored cells), or set references.verifier_model to a stronger model (e.g. llamacpp/qwen2.5-1.5b).")
    if incomplete:
        say_cells("warning", incomplete, "had failed model calls and are incomplete",
                  f"Each {RUN} lists the errors; their failed examples are left out of the tables. Run the "
                  "same command again once the engine works: only those calls are made again.")
        raise typer.Exit(EXIT_INCOMPLETE)
    if empty and empty_pools_fail:
        raise typer.Exit(2)


def say_cells(level: str, cells: list[str], what: str, advice: str) -> None:
    style = "bold red" if level == "error" else "bold yellow"
    err_console.print(f"[{style}]{level}:[/] {len(cells)} cell(s) {what}: {', '.join(cells)}. {advice}",
                      highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(experiment_app, name="experiment")
