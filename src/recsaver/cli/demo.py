"""`recsaver demo`: the main job on the built-in default."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config.schema import DEFAULT_MODEL
from .common import byte_progress, friendly_errors, generation_progress, out_console


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


@friendly_errors
def demo(
    out: Path = typer.Option(Path("demo_out"), help="Folder for every output of the demo."),
    model: str = typer.Option(DEFAULT_MODEL, help="Model for the zero-shot steps."),
    limit: int = typer.Option(4, help="Test examples per domain for the model steps."),
) -> None:
    """The main job on the built-in default: the shipped sample through the whole pipeline."""
    from ..steps.demo import DemoConfig, run_demo

    run_demo(out, console=out_console, progress=byte_progress, generation_progress=generation_progress,
             cfg=DemoConfig(model=model, limit=limit))
