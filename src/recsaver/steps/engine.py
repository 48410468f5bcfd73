"""The engine a step runs on: its backend, built from the step's config, behind the shared generation cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from ..backends import BackendOptions, load_backend
from ..cache import CachedBackend, GenerationCache


@dataclass(frozen=True, kw_only=True)
class EngineFields:
    """Sampling and engine fields that PredictConfig, ReferencesConfig and DistillSampleConfig share.

    Keyword-only, so each step config keeps its own positional fields (data, split, ...) first.
    """

    top_p: float = 1.0
    seed: int = 0
    limit: int | None = None
    grammar: bool = False
    n_ctx: int = 4096
    base_urls: tuple[str, ...] = ()
    concurrency: int = 4
    balance: str = "round-robin"
    cache: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def engine_values(self) -> dict[str, Any]:
        """These fields by name, to carry them from one step config into another."""
        return {f.name: getattr(self, f.name) for f in fields(EngineFields)}


class EngineConfig(Protocol):
    """The fields PredictConfig, ReferencesConfig and DistillSampleConfig share for their engine."""

    @property
    def model(self) -> str: ...
    @property
    def n_ctx(self) -> int: ...
    @property
    def base_urls(self) -> tuple[str, ...]: ...
    @property
    def concurrency(self) -> int: ...
    @property
    def balance(self) -> str: ...
    @property
    def cache(self) -> str | None: ...
    @property
    def extra(self) -> dict[str, Any]: ...


def default_cache_path() -> Path:
    home = Path(os.environ.get("RECSAVER_HOME", Path.home() / ".cache" / "recsaver"))
    return home / "generations.sqlite"


def backend_options(cfg: EngineConfig) -> BackendOptions:
    return BackendOptions(n_ctx=cfg.n_ctx, base_urls=cfg.base_urls, concurrency=cfg.concurrency,
                          balance=cfg.balance, extra=cfg.extra)


@contextmanager
def cached_backend(cfg: EngineConfig) -> Iterator[CachedBackend]:
    """`cfg.model` behind the generation cache; both are closed on leaving, the backend first."""
    cache = GenerationCache(Path(cfg.cache) if cfg.cache else default_cache_path())
    try:
        backend = CachedBackend(load_backend(cfg.model, backend_options(cfg)), cache)
        try:
            yield backend
        finally:
            backend.close()
    finally:
        cache.close()
