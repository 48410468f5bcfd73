"""Experiment grids (paper Tables 3, 4, 5, 9, 11, 15): one config -> many run folders -> paper tables.

The grid is planned first (so progress can say "cell 3 of 14"), then run cell by
cell through the ordinary step APIs. Each cell owns a folder under the experiment
folder and ends by writing `cell.json` with a hash of exactly what determines its
outputs (its step config without paths that do not change results, plus the hashes
of the cells it reads). A rerun skips every cell whose `cell.json` holds the same
hash and whose outputs exist; every model call goes through one shared generation
cache, so even a cell that must rerun pays only for calls never made before.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig, config_dict, config_hash
from ..models import file_sha256
from ..store import DataStore, RunStore
from ..store import load_experiment as load_experiment  # re-exported: moved to store.py
from .cells import STEPS, hashed
from .score import EmptyPoolsError


@dataclass(frozen=True)
class Cell:
    """One unit of work and its folder (``name``, relative to the experiment folder)."""

    name: str
    kind: str
    domain: str
    labels: dict[str, Any] = field(default_factory=dict, hash=False)
    deps: tuple[str, ...] = ()


@dataclass
class Hooks:
    """How a caller watches the run: cell headers, generation bars, example bars (all optional)."""

    on_cell: Callable[[int, int, Cell, str], None] | None = None
    generation: Callable[[], AbstractContextManager[Any]] | None = None
    examples: Callable[[str], AbstractContextManager[Any]] | None = None


def slug(text: str) -> str:
    """A folder-safe name for a model id such as llamacpp/qwen2.5-0.5b."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.split("/", 1)[-1] if "/" in text else text).strip("_")[:60]


# --------------------------------------------------------------------------- planning


def plan(cfg: ExperimentConfig) -> list[Cell]:
    """Every cell in run order: per domain data -> baseline -> predictions -> references -> scores."""
    cells: list[Cell] = []
    for d in cfg.domains:
        dom = d.name
        data = [] if d.prepared else [f"{dom}/data"]
        if not d.prepared:
            cells.append(Cell(f"{dom}/data", "data", dom))
        if cfg.baseline:
            cells.append(Cell(f"{dom}/baseline", "baseline", dom, {"row": "baseline"}, tuple(data)))
        cot_cells = []
        for model in cfg.models:
            for method in cfg.methods:
                for ablation in (cfg.ablations if method in cfg.ablate else ("none",)):
                    cell = Cell(f"{dom}/{slug(model)}/{method}-{ablation}", "predict", dom,
                                {"model": model, "method": method, "ablation": ablation}, tuple(data))
                    cells.append(cell)
                    if method == "cot":
                        cot_cells.append(cell)
        if cfg.distill is not None:
            from .experiment_distill import plan_distill

            distilled = plan_distill(cfg, dom, tuple(data))
            cells.extend(distilled)
            cot_cells += [c for c in distilled if c.kind == "predict" and c.labels["method"] == "cot"]
        if cfg.references.enabled:
            for verify in cfg.references.verify:
                refs = Cell(f"{dom}/references-{verify}", "references", dom,
                            {"verify": verify, "model": cfg.references.model or cfg.models[0]}, tuple(data))
                cells.append(refs)
                for pc in cot_cells:
                    cells.append(Cell(f"{pc.name}/score-{verify}", "score", dom, {**pc.labels, "verify": verify},
                                      (pc.name, refs.name)))
    return cells


# --------------------------------------------------------------------------- running


class ExperimentRunner:
    """Runs a planned grid with resume; `run()` returns the experiment record (experiment.json)."""

    def __init__(self, cfg: ExperimentConfig, out: Path, hooks: Hooks | None = None):
        from ..metrics.text.registry import text_metrics

        self.metrics = cfg.score.metrics or text_metrics()
        unknown = [m for m in self.metrics if m not in text_metrics()]
        if unknown:
            raise ValueError(f"score.metrics: {', '.join(map(repr, unknown))} is not a registered text metric "
                             f"(known: {', '.join(text_metrics())}; recsaver/metrics/text/registry.py)")
        self.cfg, self.out, self.hooks = cfg, Path(out), hooks or Hooks()
        self.cache = str(Path(cfg.cache) if cfg.cache else self.out / "cache.sqlite")
        self.hashes: dict[str, str] = {}
        self._scorer: Any = None

    def path(self, name: str) -> Path:
        return self.out / name

    def store(self, name: str) -> RunStore:
        """The folder of cell `name` (or of the experiment, for "")."""
        return RunStore(self.path(name))

    def data_dir(self, domain: str) -> Path:
        spec = self.cfg.domain(domain)
        return Path(spec.prepared) if spec.prepared else self.path(f"{domain}/data")

    def run(self) -> dict[str, Any]:
        cells = plan(self.cfg)
        self.out.mkdir(parents=True, exist_ok=True)
        experiment = RunStore(self.out)
        record: dict[str, Any] = {"name": self.cfg.name, "config": config_dict(self.cfg),
                                  "config_hash": config_hash(self.cfg), "cache": self.cache, "cells": []}
        for k, cell in enumerate(cells, 1):
            digest = self.cell_hash(cell)
            status = "skipped" if self.is_done(cell, digest) else "ran"
            ran = status == "ran"
            if self.hooks.on_cell:
                self.hooks.on_cell(k, len(cells), cell, status)
            started = time.perf_counter()
            if ran:
                try:
                    result = self.execute(cell)
                except EmptyPoolsError as e:  # nothing to score against: recorded and said, the grid goes on
                    result, status = {"error": str(e)}, "empty-pools"
                    self.store(cell.name).remove(STEPS[cell.kind].outputs)  # old scores must not stand in
                self.store(cell.name).write_cell({
                    "name": cell.name, "kind": cell.kind, "domain": cell.domain, "labels": cell.labels,
                    "hash": digest, "seconds": round(time.perf_counter() - started, 3),
                    "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "result": result})
            if ran and self.incomplete(cell):
                status = "incomplete"  # failed model calls: not done, rerun next time (retrying only those)
            # Cells that read prepared data depend on its content: touching a dump reruns the data cell
            # but, when the examples come out the same, nothing downstream.
            self.hashes[cell.name] = self.content_hash(cell) if cell.kind == "data" else digest
            record["cells"].append({**asdict(cell), "deps": list(cell.deps), "hash": digest, "status": status})
            # Kept current after every cell, so a report can be drawn from a grid that is still running.
            experiment.write_experiment({**record, "finished": k == len(cells)})
        return record

    # -- resume ----------------------------------------------------------------------------

    def is_done(self, cell: Cell, digest: str) -> bool:
        folder = self.store(cell.name)
        stored = folder.read_cell()  # None when absent or unreadable (killed while writing it)
        if stored is None:
            return False
        return stored.get("hash") == digest and folder.has(STEPS[cell.kind].outputs) and not self.incomplete(cell)

    def incomplete(self, cell: Cell) -> bool:
        """Whether the cell's run.json says some of its model calls failed (steps/runs.py)."""
        return self.store(cell.name).incomplete()

    def cell_hash(self, cell: Cell) -> str:
        """What determines the outputs: kind, step settings, the data's identity and the deps' hashes."""
        parts: dict[str, Any] = {"kind": cell.kind, "labels": cell.labels, "settings": self.settings(cell),
                                 "deps": [self.hashes[d] for d in cell.deps]}
        spec = self.cfg.domain(cell.domain)
        if cell.kind == "data":
            parts["sources"] = self.source_identity(cell.domain)
        elif spec.prepared and cell.kind in ("baseline", "predict", "references", "distill-sample"):
            files = DataStore(Path(spec.prepared)).split_files()
            parts["prepared"] = {name: file_sha256(path) for name, path in files.items() if path.exists()}
        return config_hash(parts)

    def content_hash(self, cell: Cell) -> str:
        files = self.store(cell.name).data.split_files()
        return config_hash({name: file_sha256(path) for name, path in files.items()})

    def source_identity(self, domain: str) -> dict[str, Any]:
        """Raw dumps by path, size and mtime: hashing multi-GB dumps on every run would cost minutes."""
        from ..sample import sample_files

        spec = self.cfg.domain(domain)
        files = (sample_files(domain) if spec.sample
                 else (Path(str(spec.reviews)), Path(spec.meta) if spec.meta else None))
        out = {}
        for f in files:
            if f is None:
                continue
            if not Path(f).exists():
                raise FileNotFoundError(f"{f}: no such dump (domains.{domain} in the experiment config)")
            st = Path(f).stat()
            out[str(f) if not spec.sample else Path(f).name] = [st.st_size, st.st_mtime_ns if not spec.sample else 0]
        return out

    def settings(self, cell: Cell) -> dict[str, Any]:
        """The cell's settings as they enter its hash (cells.NOT_HASHED left out, the same for every kind)."""
        return hashed(STEPS[cell.kind].settings(self, cell))

    # -- execution -------------------------------------------------------------------------

    def generation(self) -> AbstractContextManager[Any]:
        return self.hooks.generation() if self.hooks.generation else nullcontext((None, None))

    def execute(self, cell: Cell) -> dict[str, Any]:
        return STEPS[cell.kind].run(self, cell, self.path(cell.name))

    def scorer(self) -> Any:
        """One TextScorer for the whole grid: BERTScore's encoder loads once."""
        if self._scorer is None:
            from ..metrics.text import TextScorer

            self._scorer = TextScorer(self.metrics)
        return self._scorer


def incomplete_cells(record: dict[str, Any]) -> list[str]:
    """Names of the cells of an experiment record whose runs had failed model calls."""
    return [c["name"] for c in record["cells"] if c["status"] == "incomplete"]


def empty_pool_cells(record: dict[str, Any]) -> list[str]:
    """Names of the score cells that had no reference to score against (every pool empty)."""
    return [c["name"] for c in record["cells"] if c["status"] == "empty-pools"]


def run_experiment(cfg: ExperimentConfig, out: Path, hooks: Hooks | None = None) -> dict[str, Any]:
    """Run (or resume) the grid, then write the paper tables (tables.md / .html / .tex) into OUT."""
    record = ExperimentRunner(cfg, out, hooks).run()
    from ..reports.paper import experiment_tables
    from ..reports.tables import write_tables

    tables, tests = experiment_tables(Path(out), record)
    experiment = RunStore(out)
    experiment.write_significance(tests)
    record["tables"] = [str(p) for p in write_tables(tables, Path(out), title=f"{cfg.name}: paper tables")]
    experiment.write_experiment(record)
    return record
