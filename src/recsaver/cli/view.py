"""`recsaver view RUN...`: a local per-example viewer over run folders (as `inspect view` is for inspect logs)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import err_console, friendly_errors, out_console


def register(app: typer.Typer) -> None:
    app.command("view")(view)


@friendly_errors
def view(
    runs: list[Path] = typer.Argument(..., help="Run folders: predict, baseline, references, score or experiment."),
    port: int = typer.Option(0, help="Port; 0 picks a free one (the address is printed)."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind; the default keeps the viewer on this machine."),
    open_browser: bool = typer.Option(True, "--open/--no-open", help="Open the viewer in the default browser."),
) -> None:
    """Browse the examples of runs one by one: filter and sort the list, read the prompt, reasoning, P(1..5),
    Rec-SAVER candidates and per-example scores, and compare runs side by side. Read only."""
    from ..view.app import create_app, serve

    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"[yellow]warning:[/] binding {host}: other machines can read these runs' prompts and "
                          "outputs", highlight=False)
    app = create_app(runs)
    viewer = app.state.viewer
    out_console.print(f"{len(viewer.runs)} run(s), {len(viewer.rows)} rows", highlight=False)
    serve(app, host=host, port=port, open_browser=open_browser,
          say=lambda line: out_console.print(line, highlight=False, soft_wrap=True))
