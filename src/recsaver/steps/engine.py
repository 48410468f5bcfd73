"""The engine a step runs on: its backend, built from the step's config, behind the shared generation cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..backends import BackendOptions, load_backend
from ..cache import CachedBackend, GenerationCache


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
    def parallel(self) -> int: ...
    @property
    def balance(self) -> str: ...
    @property
    def cache(self) -> str | None: ...
    @property
    def batch_api(self) -> bool: ...
    @property
    def extra(self) -> dict[str, Any]: ...


def default_cache_path() -> Path:
    home = Path(os.environ.get("RECSAVER_HOME", Path.home() / ".cache" / "recsaver"))
    return home / "generations.sqlite"


def cache_path(cfg: EngineConfig) -> Path:
    return Path(cfg.cache) if cfg.cache else default_cache_path()


def backend_options(cfg: EngineConfig) -> BackendOptions:
    """The backend's options; `--batch` keeps its batch records beside the cache its results go to, so a
    rerun on the same cache finds (and resumes) the batches an interrupted run submitted."""
    return BackendOptions(n_ctx=cfg.n_ctx, base_urls=cfg.base_urls, concurrency=cfg.concurrency,
                          parallel=cfg.parallel, balance=cfg.balance, batch=cfg.batch_api,
                          batch_dir=f"{cache_path(cfg)}.batches" if cfg.batch_api else None, extra=cfg.extra)


@contextmanager
def cached_backend(cfg: EngineConfig) -> Iterator[CachedBackend]:
    """`cfg.model` behind the generation cache; both are closed on leaving, the backend first."""
    cache = GenerationCache(cache_path(cfg))
    try:
        backend = CachedBackend(load_backend(cfg.model, backend_options(cfg)), cache)
        try:
            yield backend
        finally:
            backend.close()
    finally:
        cache.close()
