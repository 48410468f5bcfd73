"""`--set a.b=c` overrides: applied to the raw YAML mapping, each value typed by the dataclass field it lands on."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import yaml

from .fields import is_domain_tuple, is_mapping, is_tuple, strip_optional
from .settings import ConfigError, DomainSpec, ExperimentConfig


def apply_override(raw: dict[str, Any], item: str, sources: dict[tuple[str, ...], str],
                   schema: Any = ExperimentConfig) -> None:
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. predict.limit=5")
    key, _, value = item.partition("=")
    parts = tuple(p for p in key.strip().split("."))
    if not all(parts):
        raise ConfigError(f"--set {item}: empty part in key {key!r}")
    node: dict[str, Any] = raw
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        tp = _field_type(schema, part, f"--set {item}", parts[:depth])
        if last:
            node[part] = _parse_override(value, tp)
            sources[parts] = f"--set {item}"
            return
        inner = strip_optional(tp)
        if is_domain_tuple(inner):
            schema = _DomainsByName
        elif dataclasses.is_dataclass(inner) or inner is _DomainsByName or is_mapping(inner):
            schema = inner
        else:
            raise ConfigError(f"--set {item}: {'.'.join(parts[:depth + 1])} is not a section")
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {item}: {'.'.join(parts[:depth + 1])} is not a mapping in the file")
        node = child


class _DomainsByName:
    """Marker: `domains.<name>.<field>` addresses a DomainSpec by its name."""


def _field_type(schema: Any, name: str, where: str, prefix: tuple[str, ...]) -> Any:
    if schema is _DomainsByName:
        return DomainSpec
    if is_mapping(schema):
        return Any
    hints = typing.get_type_hints(schema)
    if name not in hints:
        known = ", ".join(f.name for f in dataclasses.fields(schema))
        section = ".".join(prefix) or "the top level"
        raise ConfigError(f"{where}: unknown key {name!r} in {section} (known: {known})")
    return hints[name]


def _parse_override(value: str, tp: Any) -> Any:
    inner = strip_optional(tp)
    if inner is str and value.strip() not in ("null", "~"):
        return value
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    if is_tuple(inner) and isinstance(parsed, str):
        return [v.strip() for v in parsed.split(",") if v.strip()]
    return parsed
