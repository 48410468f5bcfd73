"""The experiment config's shape: frozen dataclasses for every section, and the allowed tables and methods."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
