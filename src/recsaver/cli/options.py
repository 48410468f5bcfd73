"""Command line options generated from a step's config dataclass (config/schema.py).

`@with_config(PredictConfig)` turns each field into one option (name, type, default and help from the
field and its metadata) and adds `--config FILE.yaml` (a mapping of the same fields) and `--set
FIELD=VALUE`. Options given on the command line win over the file; `--set` wins over both. The
command receives the built, checked config as its first argument, so no command restates a default.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from ..config.fields import is_tuple, strip_optional
from ..config.schema import EngineFields

_FILE = "config_file"
_CTX = "typer_context"
_SET = "set_"


def config_options(cls: Any, skip: tuple[str, ...] = ("extra",)) -> list[inspect.Parameter]:
    """One keyword parameter per field, with a typer.Option default carrying the field's flag and help."""
    hints = typing.get_type_hints(cls)
    params = []
    engine = {f.name for f in dataclasses.fields(EngineFields)} if issubclass(cls, EngineFields) else set()
    # The step's own fields first, then the engine fields it shares with the other steps.
    for f in sorted(dataclasses.fields(cls), key=lambda f: f.name in engine):
        if f.name in skip:
            continue
        flag = f.metadata.get("flag") or f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        if f.metadata.get("choices"):
            help_text += f" One of: {', '.join(map(str, f.metadata['choices']))}."
        tp, required = hints[f.name], f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default: Any = f.default
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        show_default = True
        if is_tuple(strip_optional(tp)):
            # Repeatable; left empty the field keeps its own default (shown in the help, not as a list).
            item = typing.get_args(strip_optional(tp))[0]
            tp, show_default = list[item], not default  # type: ignore[valid-type]  # built at run time
            if default:
                help_text += " Default: the built-in list."
            default = []
        names = [f"--{flag}/--no-{flag}"] if strip_optional(tp) is bool else [f"--{flag}"]
        # Required fields may come from --config, so typer does not enforce them (the config build does).
        option = typer.Option(None if required else default, *names, help=help_text, show_default=show_default)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=tp | None if required else tp))
    return params


def given_on_line(context: typer.Context, name: str) -> bool:
    """Whether option `name` was given on the command line (or by its environment), not left at its default.

    typer carries its own copy of click, so the source is compared by name, not against click's enum."""
    source = context.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def with_config(cls: Any, skip: tuple[str, ...] = ("extra",)) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate `command(cfg, **own_options)`: the config's fields become its options."""
    from ..config.loading import load_step_config

    generated = config_options(cls, skip)
    names = [p.name for p in generated]
    comma = {f.name: bool(f.metadata.get("comma")) for f in dataclasses.fields(cls)}
    extra = [
        inspect.Parameter(_FILE, inspect.Parameter.KEYWORD_ONLY, annotation=Path | None, default=typer.Option(
            None, "--config", help=f"YAML file of {cls.__name__} fields; options given here win over it.")),
        inspect.Parameter(_SET, inspect.Parameter.KEYWORD_ONLY, annotation=list[str], default=typer.Option(
            [], "--set", help="FIELD=VALUE, wins over the options and --config (repeatable).")),
    ]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(func, include_extras=True)
        own_params = list(inspect.signature(func).parameters.values())[1:]
        wants_ctx = any(p.name == "ctx" for p in own_params)
        own = [p.replace(annotation=hints.get(p.name, p.annotation), kind=inspect.Parameter.KEYWORD_ONLY)
               for p in own_params if p.name != "ctx"]

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            context = kwargs.pop(_CTX)
            if wants_ctx:
                kwargs["ctx"] = context
            given = {}
            for name in names:
                value = kwargs.pop(name)
                if not given_on_line(context, name):
                    continue
                if isinstance(value, list):
                    if comma[name]:
                        value = [item.strip() for v in value for item in v.split(",") if item.strip()]
                    value = tuple(value)
                    if not value:
                        continue
                given[name] = value
            cfg = load_step_config(cls, kwargs.pop(_FILE), kwargs.pop(_SET), given)
            return func(cfg, **kwargs)

        params = [*generated, *extra, *own,
                  inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)]
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  # what typer reads
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # typer must read the generated signature, not func's
        return command

    return decorate
