"""Reading a config file: YAML with each key's file:line kept, overrides applied, then a typed, strict build."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .fields import is_domain_tuple, is_mapping, is_tuple, strip_optional
from .overrides import apply_override
from .schema import check_choices
from .settings import ConfigError, DomainSpec, ExperimentConfig
from .validation import validate


def load_config(path: Path | str, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read, override (`a.b=c`) and check an experiment config."""
    raw, sources = read_yaml(Path(path))
    for item in overrides:
        apply_override(raw, item, sources)
    loader = Loader(sources, str(path))
    cfg = loader.build(ExperimentConfig, raw, ())
    validate(cfg, loader)
    return cfg


def load_step_config(cls: Any, path: Path | str | None, overrides: Sequence[str] = (),
                     given: dict[str, Any] | None = None) -> Any:
    """A step config from a YAML file of its fields (`--config`), the options given on the command line
    (`given`, which win over the file) and `--set key=value` overrides (which win over both)."""
    raw, sources = read_yaml(Path(path)) if path is not None else ({}, {})
    for k, v in (given or {}).items():
        raw[k] = list(v) if isinstance(v, tuple) else v
        sources[(k,)] = f"--{k.replace('_', '-')}"
    for item in overrides:
        apply_override(raw, item, sources, schema=cls)
    return Loader(sources, str(path) if path is not None else "command line").build(cls, raw, ())


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """A YAML mapping and each key's 'file:line'."""
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    text = path.read_text()
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    raw = yaml.safe_load(text) if root is not None else {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: the config must be a mapping of keys, got {type(raw).__name__}")
    return raw, (_line_map(root, path) if root is not None else {})


def _line_map(node: yaml.Node, path: Path, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Dotted key -> 'file:line' for every mapping key in the document."""
    found: dict[tuple[str, ...], str] = {prefix: f"{path}:{node.start_mark.line + 1}"}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = prefix + (str(key_node.value),)
            found.update(_line_map(value_node, path, key))
            found[key] = f"{path}:{key_node.start_mark.line + 1}"
    return found


class Loader:
    def __init__(self, sources: dict[tuple[str, ...], str], file: str):
        self.sources, self.file = sources, file

    def where(self, key: tuple[str, ...]) -> str:
        for k in range(len(key), -1, -1):
            if key[:k] in self.sources:
                return self.sources[key[:k]]
        return self.file

    def fail(self, key: tuple[str, ...], message: str) -> ConfigError:
        name = ".".join(key) or "config"
        return ConfigError(f"{self.where(key)}: {name}: {message}")

    def build(self, cls: Any, raw: Any, key: tuple[str, ...]) -> Any:
        if not isinstance(raw, dict):
            raise self.fail(key, f"expected a mapping, got {raw!r}")
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        for k in raw:
            if k not in hints:
                known = ", ".join(n for n in names if not (cls is DomainSpec and n == "name"))
                raise self.fail(key + (str(k),), f"unknown key (known in {'.'.join(key) or 'the top level'}: {known})")
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in raw:
                kwargs[f.name] = self.coerce(raw[f.name], hints[f.name], key + (f.name,))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise self.fail(key + (f.name,), "required key is missing")
        try:
            built = cls(**kwargs)
            check_choices(built)
            return built
        except (TypeError, ValueError) as e:
            # A config's own check names its field first ("method must be one of ..."): point at that key.
            field_name = str(e).split(" ", 1)[0]
            raise self.fail(key + (field_name,) if field_name in raw else key, str(e)) from None

    def coerce(self, value: Any, tp: Any, key: tuple[str, ...]) -> Any:
        inner = strip_optional(tp)
        if value is None:
            if inner is not tp:
                return None
            raise self.fail(key, "must not be null")
        if is_domain_tuple(inner):
            if not isinstance(value, dict) or not value:
                raise self.fail(key, "expected a mapping of domain name -> {prepared | reviews, meta | sample}")
            return tuple(self.build(DomainSpec, {"name": str(n), **(spec or {})}, key + (str(n),))
                         for n, spec in value.items())
        if dataclasses.is_dataclass(inner):
            return self.build(inner, value, key)
        if is_mapping(inner):
            if not isinstance(value, dict):
                raise self.fail(key, f"expected a mapping, got {value!r}")
            return dict(value)
        if is_tuple(inner):
            item_type = typing.get_args(inner)[0]
            items = value if isinstance(value, list) else [value]
            return tuple(self.coerce(v, item_type, key) for v in items)
        if inner is bool:
            if isinstance(value, bool):
                return value
            raise self.fail(key, f"expected true or false, got {value!r}")
        if inner is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise self.fail(key, f"expected an integer, got {value!r}")
        if inner is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            raise self.fail(key, f"expected a number, got {value!r}")
        if inner is str:
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                return str(value)
            raise self.fail(key, f"expected a string, got {value!r}")
        if inner is Any:
            return value
        raise self.fail(key, f"unsupported field type {inner!r}")
