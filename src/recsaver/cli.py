"""Command line: parses arguments, calls one step, prints. No pipeline logic lives here."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

app = typer.Typer(help="recsaver: LLM reasoning for rating prediction, and Rec-SAVER evaluation of it.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Amazon review dumps -> examples.", no_args_is_help=True)
app.add_typer(data_app, name="data")

out_console = Console()
err_console = Console(stderr=True)


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Known failures print one clear line and exit 2; no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .data.sources import BadInputError

        try:
            return func(*args, **kwargs)
        except (BadInputError, FileNotFoundError, ValueError, OSError) as e:
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


@data_app.command("prepare")
@friendly_errors
def data_prepare(
    reviews: Path = typer.Argument(..., help="Review dump (2014/2018/2023 layout, .gz or plain; detected by content)."),
    meta: Optional[Path] = typer.Argument(None, help="Item metadata dump (optional)."),
    domain: str = typer.Option(..., help="beauty | movies: prompt wording and brand fallbacks."),
    out: Path = typer.Option(..., help="Output folder for train.jsonl, test.jsonl, stats.json."),
    min_history: int = typer.Option(4, help="Fewest earlier reviews a target needs."),
    max_history: int = typer.Option(10, help="Most earlier reviews a target may have / history kept."),
    targets: str = typer.Option("all", help="all | last: every eligible review, or each user's last one."),
    history_overflow: str = typer.Option("skip", help="skip | truncate targets with more than max-history earlier reviews."),
    train_per_label: int = typer.Option(800, help="Train examples per rating label."),
    test_per_label: int = typer.Option(100, help="Test examples per rating label."),
    test_fraction: Optional[float] = typer.Option(None, help="Share of users in test (default: test/(train+test))."),
    seed: int = typer.Option(0, help="Seed for the user split and the sampling."),
    on_bad_line: str = typer.Option("error", help="error | skip (skipped lines are counted in stats.json)."),
    max_description_chars: int = typer.Option(600, help="Cap on item descriptions."),
    max_review_chars: int = typer.Option(1200, help="Cap on review texts."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Stream a dump, build histories, split users, balance labels."""
    from .data.prepare import PrepareConfig, prepare
    from .data.sources import FieldCaps

    if on_bad_line not in ("error", "skip"):
        raise ValueError(f"--on-bad-line must be error or skip, got {on_bad_line!r}")
    cfg = PrepareConfig(
        domain=domain,  # type: ignore[arg-type]
        min_history=min_history, max_history=max_history, targets=targets,  # type: ignore[arg-type]
        history_overflow=history_overflow, train_per_label=train_per_label,  # type: ignore[arg-type]
        test_per_label=test_per_label, test_fraction=test_fraction, seed=seed,
        on_bad_line=on_bad_line,  # type: ignore[arg-type]
        caps=FieldCaps(description=max_description_chars, review_text=max_review_chars),
    )
    with byte_progress(progress) as update:
        result = prepare(reviews, meta, out, cfg, progress=update)
    for w in result.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    skipped = sum(result.stats["bad_lines"]["reviews"].values()) + sum(result.stats["bad_lines"]["meta"].values())
    if skipped:
        err_console.print(f"[yellow]warning:[/] skipped {skipped} bad lines (see stats.json bad_lines)")
    s = result.stats
    out_console.print(
        f"wrote {s['examples']['train']} train and {s['examples']['test']} test examples to {out} "
        f"({s['counts']['users']} users, {s['counts']['duplicates_dropped']} duplicates dropped)"
    )


@data_app.command("download")
@friendly_errors
def data_download(
    release: str = typer.Option(..., help="2023 | 2018"),
    category: str = typer.Option(..., help="Category as named in the release, e.g. All_Beauty, Movies_and_TV."),
    out: Path = typer.Option(Path("data/raw"), help="Folder to download into."),
    base_url: Optional[str] = typer.Option(None, help="Mirror to use instead of the official host."),
    five_core: bool = typer.Option(False, help="2018 only: the 5-core review file."),
    meta: bool = typer.Option(True, help="Also fetch the metadata file."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Fetch official dump files, resuming partial downloads."""
    from .data.download import download_dump

    files = download_dump(release, category, out, base_url=base_url, five_core=five_core, meta=meta,
                          progress=progress)
    out_console.print(f"reviews: {files.reviews}")
    if files.meta:
        out_console.print(f"meta:    {files.meta}")


@data_app.command("sample")
def data_sample(domain: str = typer.Argument("beauty", help="beauty | movies")) -> None:
    """Print the paths of the built-in sample dump (reviews, meta) for DOMAIN."""
    from .sample import sample_files

    reviews, meta = sample_files(domain)
    out_console.print(f"{reviews}\n{meta}", highlight=False)


@app.command("baseline")
@friendly_errors
def baseline(
    data: Path = typer.Option(..., help="Folder written by `recsaver data prepare`."),
    split: str = typer.Option("test", help="train | test"),
    out: Path = typer.Option(..., help="Run folder for predictions.jsonl, metrics.json, run.json."),
    limit: Optional[int] = typer.Option(None, help="Use only the first N examples."),
) -> None:
    """Naive baseline: the user's historical average rating (paper Table 3)."""
    from .steps.baseline import run_baseline

    metrics = run_baseline(data, split, out, limit)
    print_metrics(metrics, title=f"naive baseline ({split})")
    out_console.print(f"wrote {out}/predictions.jsonl, metrics.json, run.json")


@app.command("metrics")
@friendly_errors
def metrics(
    predictions: Path = typer.Argument(..., help="A predictions.jsonl file."),
    out: Optional[Path] = typer.Option(None, help="Where to write metrics.json (default: beside the predictions)."),
    resamples: int = typer.Option(1000, help="Bootstrap resamples for the 95% CIs."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
) -> None:
    """Rating metrics with bootstrap CIs; prints a table and writes metrics.json."""
    from .data.records import load_predictions, write_json
    from .metrics import rating_metrics

    result = rating_metrics(load_predictions(predictions), n_resamples=resamples, seed=seed)
    write_json(out or predictions.parent / "metrics.json", result)
    print_metrics(result, title=str(predictions))


def print_metrics(result: dict[str, Any], title: str) -> None:
    from .report import metrics_table

    out_console.print(metrics_table(result, title))


@app.command("demo")
@friendly_errors
def demo(out: Path = typer.Option(Path("demo_out"), help="Folder for every output of the demo.")) -> None:
    """The main job on the built-in default: the shipped sample through the whole pipeline."""
    from .steps.demo import run_demo

    run_demo(out, console=out_console, progress=byte_progress)


if __name__ == "__main__":
    app()
