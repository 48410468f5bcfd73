"""`recsaver data prepare|import|download|sample`: Amazon review dumps, or your own tables, -> examples."""

from __future__ import annotations

from pathlib import Path

import typer

from ..data.prepare import ImportConfig, PrepareConfig, PrepareResult
from .common import FormatOpt, OutputFormat, byte_progress, err_console, friendly_errors, out_console, write_formats
from .options import with_config


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Amazon review dumps, or your own tables, -> examples.", no_args_is_help=True)
    data_app.command("prepare")(data_prepare)
    data_app.command("import")(data_import)
    data_app.command("download")(data_download)
    data_app.command("sample")(data_sample)
    app.add_typer(data_app, name="data")


@friendly_errors
@with_config(PrepareConfig, skip=("caps", "batch_rows", "memory_limit"))
def data_prepare(
    cfg: PrepareConfig,
    reviews: Path = typer.Argument(..., help="Review dump (2014/2018/2023 layout, .gz or plain; detected by content)."),
    meta: Path | None = typer.Argument(None, help="Item metadata dump (optional)."),
    out: Path = typer.Option(..., help="Output folder for train.jsonl, test.jsonl, stats.json."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    format: FormatOpt = OutputFormat.jsonl,
) -> None:
    """Stream a dump, build histories, split users, balance labels."""
    from ..data.prepare import prepare

    with byte_progress(progress) as update:
        result = prepare(reviews, meta, out, cfg, progress=update)
    _summary(result, out, format)


@friendly_errors
@with_config(ImportConfig, skip=("caps", "batch_rows", "memory_limit"))
def data_import(
    cfg: ImportConfig,
    interactions: Path = typer.Option(..., help="Interactions table (.csv, .jsonl, .parquet; .gz for csv/jsonl): "
                                                "user_id, item_id, rating, timestamp [, review_title, review_text]."),
    items: Path | None = typer.Option(None, help="Items table (same formats): item_id [, title, brand, categories, "
                                                 "description, price]; other columns become prompt fields."),
    out: Path = typer.Option(..., help="Output folder for train.jsonl, test.jsonl, stats.json."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    format: FormatOpt = OutputFormat.jsonl,
) -> None:
    """Your own interactions (and items) table -> the same examples, splits and stats.json as `data prepare`."""
    from ..data.prepare import import_table

    with byte_progress(progress) as update:
        result = import_table(interactions, items, out, cfg, progress=update)
    _summary(result, out, format)


def _summary(result: PrepareResult, out: Path, format: OutputFormat) -> None:
    """Shortfalls and skipped lines as warnings, one line of what was written, and the Parquet copies."""
    for w in result.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    s = result.stats
    skipped = sum(sum(counts.values()) for name, counts in s["bad_lines"].items() if name != "examples")
    if skipped:
        err_console.print(f"[yellow]warning:[/] skipped {skipped} bad lines (see stats.json bad_lines)")
    out_console.print(
        f"wrote {s['examples']['train']} train and {s['examples']['test']} test examples to {out} "
        f"({s['counts']['users']} users, {s['counts']['duplicates_dropped']} duplicates dropped)"
    )
    write_formats(out, format)


@friendly_errors
def data_download(
    release: str = typer.Option(..., help="2023 | 2018"),
    category: str = typer.Option(..., help="Category as named in the release, e.g. All_Beauty, Movies_and_TV."),
    out: Path = typer.Option(Path("data/raw"), help="Folder to download into."),
    base_url: str | None = typer.Option(None, help="Mirror to use instead of the official host."),
    five_core: bool = typer.Option(False, help="2018 only: the 5-core review file."),
    meta: bool = typer.Option(True, help="Also fetch the metadata file."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Fetch official dump files, resuming partial downloads."""
    from ..data.download import download_dump

    files = download_dump(release, category, out, base_url=base_url, five_core=five_core, meta=meta,
                          progress=progress)
    out_console.print(f"reviews: {files.reviews}")
    if files.meta:
        out_console.print(f"meta:    {files.meta}")


def data_sample(domain: str = typer.Argument("beauty", help="beauty | movies")) -> None:
    """Print the paths of the built-in sample dump (reviews, meta) for DOMAIN."""
    from ..sample import sample_files

    reviews, meta = sample_files(domain)
    print(f"{reviews}\n{meta}")
