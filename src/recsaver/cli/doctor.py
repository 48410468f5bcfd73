"""`recsaver doctor`: a row per check with its status and fix; exit 1 when the default pipeline cannot run."""

from __future__ import annotations

import json

import typer

from .common import out_console

STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def doctor(
    generation: bool = typer.Option(True, help="Run the real 4-token generation (in a child process)."),
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON lines."),
) -> None:
    """Check Python, the CPU, the llama.cpp build, a real generation, models, WordNet, BERTScore, torch, Chromium."""
    from ..doctor import Check, run_checks

    def show(row: Check) -> None:
        if as_json:
            print(json.dumps(row.to_dict()), flush=True)
            return
        out_console.print(f"[{STYLE[row.status]}]{row.status:>4}[/] [bold]{row.name}[/]: {row.detail}",
                          highlight=False, soft_wrap=True)
        if row.fix and row.status != "ok":
            out_console.print(f"      fix: {row.fix}", highlight=False, soft_wrap=True)

    rows = run_checks(generation=generation, on_check=show)
    failed = [r.name for r in rows if r.status == "fail"]
    if not as_json:
        warned = sum(r.status == "warn" for r in rows)
        verdict = (f"[bold red]{len(failed)} check(s) failed: {', '.join(failed)}[/]" if failed
                   else "[green]the default pipeline can run here[/]")
        out_console.print(f"{verdict} ({len(rows)} checks, {warned} warning(s))", highlight=False)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
