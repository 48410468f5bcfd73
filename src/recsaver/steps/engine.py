"""The engine a step runs on: its backend, built from the step's config, behind the shared generation cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..backends import BackendOptions, load_backend, split_model
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
    def executor(self) -> str: ...
    @property
    def ray_address(self) -> str: ...
    @property
    def ray_actors(self) -> int | None: ...
    @property
    def ray_cpus(self) -> float: ...
    @property
    def ray_gpus(self) -> float: ...
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


def engine_backend(cfg: EngineConfig) -> Any:
    """`cfg.model` in this process, or (`--executor ray`) on a pool of Ray actors (backends/ray_pool.py)."""
    if cfg.executor == "ray" and split_model(cfg.model)[0] == "vllm":  # Ray Data LLM's own vLLM engine
        from ..backends.vllm_ray import ray_vllm_backend

        return ray_vllm_backend(split_model(cfg.model)[1], backend_options(cfg), cfg.ray_address, cfg.ray_actors)
    if cfg.executor == "ray":
        from ..backends.ray_pool import RayBackend

        return RayBackend(cfg.model, backend_options(cfg), cfg.ray_address, cfg.ray_actors, cfg.ray_cpus,
                          cfg.ray_gpus)
    return load_backend(cfg.model, backend_options(cfg))


@contextmanager
def cached_backend(cfg: EngineConfig) -> Iterator[CachedBackend]:
    """`cfg.model` behind the generation cache; both are closed on leaving, the backend first. The cache is
    this process's: with `--executor ray` only its misses go to the actors, and their results come back here."""
    cache = GenerationCache(cache_path(cfg))
    try:
        backend = CachedBackend(engine_backend(cfg), cache)
        try:
            yield backend
        finally:
            backend.close()
    finally:
        cache.close()
