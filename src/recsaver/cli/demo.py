"""`recsaver demo`: the main job on the built-in default (src/recsaver/configs/demo.yaml)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import friendly_errors, out_console
from .experiment import exit_for, run_grid


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


@friendly_errors
def demo(
    out: Path = typer.Option(Path("demo_out"), help="Folder for every output of the demo."),
    model: str | None = typer.Option(None, help="Model for the zero-shot steps and the references "
                                                "(default: the config's, llamacpp/smollm2-135m)."),
    limit: int | None = typer.Option(None, help="Test examples per domain for the model steps (default 4)."),
    set_: list[str] = typer.Option([], "--set", help="Override a key of the demo config (repeatable)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """The main job on the built-in default: the shipped sample through the whole pipeline to one report."""
    from ..steps.demo import demo_config, run_demo

    cfg = demo_config(model, limit, set_)
    record = run_grid(cfg, out, progress, run=lambda c, folder, hooks: run_demo(folder, c, hooks))
    out_console.print(f"demo outputs are in {out.resolve()}")
    out_console.print(f"report: {Path(record['report']).resolve()}")
    exit_for(record, out, empty_pools_fail=False)
