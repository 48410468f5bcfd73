"""`recsaver data prepare|download|sample`: Amazon review dumps -> examples."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import byte_progress, err_console, friendly_errors, out_console


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Amazon review dumps -> examples.", no_args_is_help=True)
    data_app.command("prepare")(data_prepare)
    data_app.command("download")(data_download)
    data_app.command("sample")(data_sample)
    app.add_typer(data_app, name="data")


@friendly_errors
def data_prepare(
    reviews: Path = typer.Argument(..., help="Review dump (2014/2018/2023 layout, .gz or plain; detected by content)."),
    meta: Path | None = typer.Argument(None, help="Item metadata dump (optional)."),
    domain: str = typer.Option(..., help="beauty | movies: prompt wording and brand fallbacks."),
    out: Path = typer.Option(..., help="Output folder for train.jsonl, test.jsonl, stats.json."),
    min_history: int = typer.Option(4, help="Fewest earlier reviews a target needs."),
    max_history: int = typer.Option(10, help="Most earlier reviews a target may have / history kept."),
    targets: str = typer.Option("all", help="all | last: every eligible review, or each user's last one."),
    history_overflow: str = typer.Option("skip", help="skip | truncate targets with more than max-history "
                                         "earlier reviews."),
    train_per_label: int = typer.Option(800, help="Train examples per rating label."),
    test_per_label: int = typer.Option(100, help="Test examples per rating label."),
    test_fraction: float | None = typer.Option(None, help="Share of users in test (default: test/(train+test))."),
    seed: int = typer.Option(0, help="Seed for the user split and the sampling."),
    on_bad_line: str = typer.Option("error", help="error | skip (skipped lines are counted in stats.json)."),
    max_description_chars: int = typer.Option(600, help="Cap on item descriptions."),
    max_review_chars: int = typer.Option(1200, help="Cap on review texts."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Stream a dump, build histories, split users, balance labels."""
    from ..data.prepare import PrepareConfig, prepare
    from ..data.sources import FieldCaps

    if on_bad_line not in ("error", "skip"):
        raise ValueError(f"--on-bad-line must be error or skip, got {on_bad_line!r}")
    cfg = PrepareConfig(
        domain=domain,
        min_history=min_history, max_history=max_history, targets=targets,
        history_overflow=history_overflow, train_per_label=train_per_label,
        test_per_label=test_per_label, test_fraction=test_fraction, seed=seed,
        on_bad_line=on_bad_line,
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
