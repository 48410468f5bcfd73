"""Experiment configs: frozen dataclasses read from YAML, `--set a.b=c` overrides, a stable hash.

A config file is checked strictly: an unknown key, a value of the wrong type or a
value outside its allowed set is an error that names the file, the line and the
dotted key (or the `--set` argument it came from), so a typo never silently falls
back to a default. Overrides are typed by the dataclass field they land on.

Relative paths in a config (data dumps, prepared folders, `out`, `cache`) are read
from the directory the command runs in, like every other path on the command line.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

TABLES = ("table3", "table4", "table5", "table9", "table11", "table15")
METHODS = ("cot", "direct")


class ConfigError(ValueError):
    """A config problem; the message names the file, line and key."""


@dataclass(frozen=True)
class PrepareSettings:
    """`recsaver data prepare` settings shared by every domain that starts from raw dumps."""

    train_per_label: int = 800
    test_per_label: int = 100
    test_fraction: float | None = None
    min_history: int = 4
    max_history: int = 10
    targets: str = "all"
    history_overflow: str = "skip"
    seed: int = 0
    on_bad_line: str = "error"
    max_description_chars: int = 600
    max_review_chars: int = 1200


@dataclass(frozen=True)
class DomainSpec:
    """Where a domain's examples come from: exactly one of prepared / reviews (+meta) / sample."""

    name: str
    prepared: str | None = None
    reviews: str | None = None
    meta: str | None = None
    sample: bool = False


@dataclass(frozen=True)
class PredictSettings:
    """Shared by every zero-shot cell; `max_tokens` is for CoT, `direct_max_tokens` for direct."""

    max_tokens: int = 350
    direct_max_tokens: int = 16
    temperature: float = 0.0
    top_p: float = 1.0
    samples: int = 1
    seed: int = 0
    limit: int | None = None
    grammar: bool = True
    rating_probs: bool = True
    force_rating: bool = True
    n_ctx: int = 4096
    base_urls: tuple[str, ...] = ()
    concurrency: int = 4
    balance: str = "round-robin"


@dataclass(frozen=True)
class ReferenceSettings:
    """Rec-SAVER references; one pool per verify rule (Table 9 compares exact with none)."""

    enabled: bool = False
    model: str | None = None
    samples: int = 4
    temperature: float = 0.7
    max_tokens: int = 256
    verify: tuple[str, ...] = ("exact",)
    grammar: bool = True
    limit: int | None = None


@dataclass(frozen=True)
class ScoreSettings:
    metrics: tuple[str, ...] = ("bleu", "rouge1", "meteor", "bertscore")
    resamples: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class SignificanceSettings:
    """Which row the others are tested against: `baseline`, `first`, or a row label."""

    reference: str = "baseline"
    resamples: int = 1000
    seed: int = 0
    alpha: float = 0.05


@dataclass(frozen=True)
class DistillSettings:
    """Tables 4 and 5: teacher samples x filters -> SFT rows -> students -> evaluation.

    `sample` and `finetune` are passed as keyword arguments to the distillation
    step's DistillSampleConfig / FinetuneConfig, which check them.
    """

    teacher: str | None = None
    samples: tuple[int, ...] = (1,)
    filters: tuple[str, ...] = ("none",)
    students: tuple[str, ...] = ()
    rating_only: tuple[bool, ...] = (False,)
    train_split: str = "train"
    sample: Mapping[str, Any] = field(default_factory=dict)
    finetune: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentConfig:
    """One grid: domains x models x methods x ablations (x samples x filters x students)."""

    name: str
    domains: tuple[DomainSpec, ...]
    tables: tuple[str, ...] = ("table3",)
    models: tuple[str, ...] = ()
    methods: tuple[str, ...] = ("cot", "direct")
    ablations: tuple[str, ...] = ("none",)
    ablate: tuple[str, ...] = ("cot",)
    baseline: bool = True
    split: str = "test"
    out: str | None = None
    cache: str | None = None
    prepare: PrepareSettings = field(default_factory=PrepareSettings)
    predict: PredictSettings = field(default_factory=PredictSettings)
    references: ReferenceSettings = field(default_factory=ReferenceSettings)
    score: ScoreSettings = field(default_factory=ScoreSettings)
    significance: SignificanceSettings = field(default_factory=SignificanceSettings)
    distill: DistillSettings | None = None

    def domain(self, name: str) -> DomainSpec:
        return next(d for d in self.domains if d.name == name)


# --------------------------------------------------------------------------- public API


def load_config(path: Path | str, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read, override (`a.b=c`) and check an experiment config."""
    path = Path(path)
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
    sources = _line_map(root, path) if root is not None else {}
    for item in overrides:
        _apply_override(raw, item, sources)
    loader = _Loader(sources, str(path))
    cfg = loader.build(ExperimentConfig, raw, ())
    _validate(cfg, loader)
    return cfg


def config_dict(cfg: Any) -> dict[str, Any]:
    """Plain JSON-able dict (tuples become lists); what the hash and run.json see."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=list))


def config_hash(cfg: Any, length: int = 16) -> str:
    """Stable across runs and machines: sha256 of canonical JSON (sorted keys)."""
    data = cfg if isinstance(cfg, dict) else config_dict(cfg)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


# --------------------------------------------------------------------------- YAML lines


def _line_map(node: yaml.Node, path: Path, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Dotted key -> 'file:line' for every mapping key in the document."""
    found: dict[tuple[str, ...], str] = {prefix: f"{path}:{node.start_mark.line + 1}"}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = prefix + (str(key_node.value),)
            found.update(_line_map(value_node, path, key))
            found[key] = f"{path}:{key_node.start_mark.line + 1}"
    return found


# --------------------------------------------------------------------------- overrides


def _apply_override(raw: dict[str, Any], item: str, sources: dict[tuple[str, ...], str]) -> None:
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. predict.limit=5")
    key, _, value = item.partition("=")
    parts = tuple(p for p in key.strip().split("."))
    if not all(parts):
        raise ConfigError(f"--set {item}: empty part in key {key!r}")
    schema: Any = ExperimentConfig
    node: dict[str, Any] = raw
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        tp = _field_type(schema, part, f"--set {item}", parts[:depth])
        if last:
            node[part] = _parse_override(value, tp)
            sources[parts] = f"--set {item}"
            return
        inner = _strip_optional(tp)
        if _is_domain_tuple(inner):
            schema = _DomainsByName
        elif dataclasses.is_dataclass(inner) or inner is _DomainsByName or _is_mapping(inner):
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
    if _is_mapping(schema):
        return Any
    hints = typing.get_type_hints(schema)
    if name not in hints:
        known = ", ".join(f.name for f in dataclasses.fields(schema))
        section = ".".join(prefix) or "the top level"
        raise ConfigError(f"{where}: unknown key {name!r} in {section} (known: {known})")
    return hints[name]


def _parse_override(value: str, tp: Any) -> Any:
    inner = _strip_optional(tp)
    if inner is str and value.strip() not in ("null", "~"):
        return value
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    if _is_tuple(inner) and isinstance(parsed, str):
        return [v.strip() for v in parsed.split(",") if v.strip()]
    return parsed


# --------------------------------------------------------------------------- typed loading


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _is_tuple(tp: Any) -> bool:
    return typing.get_origin(tp) is tuple


def _is_mapping(tp: Any) -> bool:
    return typing.get_origin(tp) in (dict, Mapping, collections.abc.Mapping) or tp in (dict, Mapping)


def _is_domain_tuple(tp: Any) -> bool:
    return _is_tuple(tp) and typing.get_args(tp)[0] is DomainSpec


class _Loader:
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
                raise self.fail(key + (str(k),), f"unknown key (known in {'.'.join(key) or 'the top level'}: "
                                                  f"{', '.join(n for n in names if not (cls is DomainSpec and n == 'name'))})")
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in raw:
                kwargs[f.name] = self.coerce(raw[f.name], hints[f.name], key + (f.name,))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise self.fail(key + (f.name,), "required key is missing")
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise self.fail(key, str(e)) from None

    def coerce(self, value: Any, tp: Any, key: tuple[str, ...]) -> Any:
        inner = _strip_optional(tp)
        if value is None:
            if inner is not tp:
                return None
            raise self.fail(key, "must not be null")
        if _is_domain_tuple(inner):
            if not isinstance(value, dict) or not value:
                raise self.fail(key, "expected a mapping of domain name -> {prepared | reviews, meta | sample}")
            return tuple(self.build(DomainSpec, {"name": str(n), **(spec or {})}, key + (str(n),))
                         for n, spec in value.items())
        if dataclasses.is_dataclass(inner):
            return self.build(inner, value, key)
        if _is_mapping(inner):
            if not isinstance(value, dict):
                raise self.fail(key, f"expected a mapping, got {value!r}")
            return dict(value)
        if _is_tuple(inner):
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


# --------------------------------------------------------------------------- value checks


def _check_in(loader: _Loader, key: tuple[str, ...], values: Sequence[Any], allowed: Sequence[Any]) -> None:
    for v in values:
        if v not in allowed:
            raise loader.fail(key, f"{v!r} is not one of {', '.join(map(str, allowed))}")


def _validate(cfg: ExperimentConfig, loader: _Loader) -> None:
    """Allowed values; imports the step modules' own lists so they cannot drift."""
    from .data.prepare import DOMAINS
    from .metrics.text import TEXT_METRICS
    from .prompts import ABLATIONS

    _check_in(loader, ("tables",), cfg.tables, TABLES)
    _check_in(loader, ("methods",), cfg.methods, METHODS)
    _check_in(loader, ("ablate",), cfg.ablate, METHODS)
    _check_in(loader, ("ablations",), cfg.ablations, ABLATIONS)
    _check_in(loader, ("references", "verify"), cfg.references.verify, ("exact", "1-off", "none"))
    _check_in(loader, ("score", "metrics"), cfg.score.metrics, TEXT_METRICS)
    _check_in(loader, ("split",), (cfg.split,), ("train", "test"))
    _check_in(loader, ("predict", "balance"), (cfg.predict.balance,), ("round-robin", "least-busy"))
    _check_in(loader, ("prepare", "targets"), (cfg.prepare.targets,), ("all", "last"))
    _check_in(loader, ("prepare", "history_overflow"), (cfg.prepare.history_overflow,), ("skip", "truncate"))
    _check_in(loader, ("prepare", "on_bad_line"), (cfg.prepare.on_bad_line,), ("error", "skip"))
    for d in cfg.domains:
        _check_in(loader, ("domains", d.name), (d.name,), DOMAINS)
        given = [k for k in ("prepared", "reviews", "sample") if getattr(d, k)]
        if len(given) != 1:
            raise loader.fail(("domains", d.name), "give exactly one of prepared, reviews (+ meta) or sample: true"
                              f" (got {', '.join(given) or 'none'})")
        if d.meta and not d.reviews:
            raise loader.fail(("domains", d.name, "meta"), "meta needs reviews")
    needs_models = cfg.methods and (cfg.distill is None or not cfg.distill.students)
    if needs_models and not cfg.models:
        raise loader.fail(("models",), "at least one model (provider/name) is needed for the zero-shot cells")
    if cfg.predict.samples > 1 and cfg.predict.temperature == 0:
        raise loader.fail(("predict", "samples"), "samples > 1 needs predict.temperature > 0")
    if cfg.references.enabled and not (cfg.references.model or cfg.models):
        raise loader.fail(("references", "model"), "references need a model (or a models list)")
    for n in ("max_tokens", "direct_max_tokens", "samples", "n_ctx"):
        if getattr(cfg.predict, n) < 1:
            raise loader.fail(("predict", n), "must be >= 1")
    if cfg.predict.limit is not None and cfg.predict.limit < 1:
        raise loader.fail(("predict", "limit"), "must be >= 1 or null")
    if cfg.significance.reference in ("baseline",) and not cfg.baseline and "table3" in cfg.tables:
        raise loader.fail(("significance", "reference"), "is baseline but baseline: false; use first or a row")
    if ("table4" in cfg.tables or "table5" in cfg.tables) and cfg.distill is None:
        raise loader.fail(("distill",), "tables 4 and 5 need a distill section")
