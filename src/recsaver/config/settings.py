"""The experiment config's shape: frozen dataclasses for every section, and the allowed tables and methods."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .schema import (
    VERIFY_HELP,
    PredictOptions,
    PrepareOptions,
    ReferencesOptions,
    ScoreOptions,
    check_references,
    check_verify,
    setting,
)

TABLES = ("table3", "table4", "table5", "table9", "table11", "table15")


class ConfigError(ValueError):
    """A config problem; the message names the file, line and key."""


@dataclass(frozen=True, kw_only=True)
class PrepareSettings(PrepareOptions):
    """`recsaver data prepare` settings shared by every domain that starts from raw dumps."""


@dataclass(frozen=True)
class DomainSpec:
    """Where a domain's examples come from: exactly one of prepared / reviews (+meta) / sample."""

    name: str
    prepared: str | None = None
    reviews: str | None = None
    meta: str | None = None
    sample: bool = False


@dataclass(frozen=True, kw_only=True)
class PredictSettings(PredictOptions):
    """Every zero-shot cell's PredictConfig fields: `max_tokens` for CoT cells, `direct_max_tokens` for direct
    ones (both default by method, schema.METHOD_DEFAULTS). The engine fields (n_ctx, base_urls, concurrency,
    balance) also serve the references and distill-sample cells; `cache` is the experiment's own key."""

    direct_max_tokens: int | None = setting(None, "Most tokens per answer of a direct cell (default by method: 16).")


@dataclass(frozen=True, kw_only=True)
class ReferenceSettings(ReferencesOptions):
    """Rec-SAVER references: one pool per verify rule (Table 9 compares exact with none). `limit` left null
    takes predict.limit; the engine fields are predict's."""

    verify: tuple[str, ...] = setting(("exact",), f"Verify modes, one pool each: {VERIFY_HELP}.")
    enabled: bool = setting(False, "Generate references (and score reasoning against them).")
    model: str | None = setting(None, "Writer and verifier (default: each model of the grid).")

    def __post_init__(self) -> None:
        check_verify(self.verify)
        check_references(self)


@dataclass(frozen=True, kw_only=True)
class ScoreSettings(ScoreOptions):
    """Every score cell's settings; `metrics` empty: every registered metric, resolved when the experiment
    starts, so a new metric needs no line here."""


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
