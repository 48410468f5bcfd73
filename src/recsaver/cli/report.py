"""`recsaver report RUN...`: one self-contained HTML report (and Markdown) over run folders."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import friendly_errors, out_console


def register(app: typer.Typer) -> None:
    app.command("report")(report)


@friendly_errors
def report(
    runs: list[Path] = typer.Argument(..., help="Run folders: predict, baseline, score, references or experiment."),
    out: Path = typer.Option(Path("report.html"), help="The HTML file; the Markdown goes beside it (.md)."),
    title: str = typer.Option("recsaver report", help="Report title."),
    resamples: int = typer.Option(1000, help="Bootstrap resamples for the paired significance tests."),
    seed: int = typer.Option(0, help="Seed of the significance tests."),
) -> None:
    """One self-contained HTML report (tables, confusion matrices, calibration, distributions, ledger, configs)."""
    from ..reports.html import build_report

    html_path, md_path = build_report(runs, out, title=title, resamples=resamples, seed=seed)
    out_console.print(f"wrote {html_path} and {md_path}", highlight=False)
