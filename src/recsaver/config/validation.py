"""Checks across a built config: allowed values, one data source per domain, settings that need each other."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .schema import ABLATIONS, DOMAINS, METHODS, SPLITS, check_sampling
from .settings import TABLES, ExperimentConfig

if TYPE_CHECKING:
    from .loading import Loader


def _check_in(loader: Loader, key: tuple[str, ...], values: Sequence[Any], allowed: Sequence[Any]) -> None:
    for v in values:
        if v not in allowed:
            raise loader.fail(key, f"{v!r} is not one of {', '.join(map(str, allowed))}")


def validate(cfg: ExperimentConfig, loader: Loader) -> None:
    """Allowed values, from the schema every layer takes them from (config imports nothing above it:
    the text-metric names are checked against the metric registry when the experiment starts)."""
    _check_in(loader, ("tables",), cfg.tables, TABLES)
    _check_in(loader, ("methods",), cfg.methods, METHODS)
    _check_in(loader, ("ablate",), cfg.ablate, METHODS)
    _check_in(loader, ("ablations",), cfg.ablations, ABLATIONS)
    _check_in(loader, ("split",), (cfg.split,), SPLITS)
    # Section fields with `choices` (verify, balance, targets, ...) were checked as each section was built.
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
    try:
        check_sampling(cfg.predict.samples, cfg.predict.temperature)
    except ValueError as e:
        raise loader.fail(("predict", "samples"), str(e)) from None
    if cfg.predict.cache is not None:
        raise loader.fail(("predict", "cache"), "the experiment's generation cache is the top-level `cache` key")
    if cfg.references.enabled and not (cfg.references.model or cfg.models):
        raise loader.fail(("references", "model"), "references need a model (or a models list)")
    for n in ("max_tokens", "direct_max_tokens", "samples", "n_ctx"):
        if (getattr(cfg.predict, n) or 1) < 1:  # None: the method's default
            raise loader.fail(("predict", n), "must be >= 1")
    if cfg.predict.limit is not None and cfg.predict.limit < 1:
        raise loader.fail(("predict", "limit"), "must be >= 1 or null")
    if cfg.significance.reference in ("baseline",) and not cfg.baseline and "table3" in cfg.tables:
        raise loader.fail(("significance", "reference"), "is baseline but baseline: false; use first or a row")
    if ("table4" in cfg.tables or "table5" in cfg.tables) and cfg.distill is None:
        raise loader.fail(("distill",), "tables 4 and 5 need a distill section")
