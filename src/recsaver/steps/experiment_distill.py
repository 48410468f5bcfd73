"""Distillation cells of an experiment grid (paper Tables 4 and 5).

Per domain and number of teacher samples m: teacher samples on the train split
(`run_distill_sample`) -> one SFT set per filter and target (reasoning or rating
only, `build_sft`) -> one fine-tuned student per base model (`run_finetune`) ->
that student predicts the test split (`run_predict`). The distillation step lives
in `recsaver.steps.distill` / `recsaver.steps.finetune`; they are imported only
when a config has a `distill` section, with a clear error when they are missing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..config import ExperimentConfig
from ..store import CELL, RunStore

if TYPE_CHECKING:
    from .experiment import Cell, ExperimentRunner


def _api(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(f"recsaver.steps.{module}")
    except ImportError as e:
        raise ValueError(f"this config has a distill section, which needs recsaver.steps.{module} "
                         f"(the distillation step); it could not be imported: {e}") from None


def plan_distill(cfg: ExperimentConfig, domain: str, data: tuple[str, ...]) -> list[Cell]:
    from .experiment import Cell, slug

    d = cfg.distill
    assert d is not None
    cells: list[Cell] = []
    teacher = d.teacher or (cfg.models[0] if cfg.models else None)
    if teacher is None:
        raise ValueError("distill.teacher is not set and the config has no models")
    for m in d.samples:
        sample = Cell(f"{domain}/distill/teacher-m{m}", "distill-sample", domain, {"teacher": teacher, "samples": m},
                      data)
        cells.append(sample)
        for f in d.filters:
            # Rating-only rows use no teacher output, so only filter "none" makes one (build_sft says so too).
            for rating_only in (r for r in d.rating_only if not r or f == "none"):
                target = "rating" if rating_only else "reason"
                sft = Cell(f"{domain}/distill/sft-m{m}-{f}-{target}", "sft", domain,
                           {"samples": m, "filter": f, "rating_only": rating_only}, (sample.name,))
                cells.append(sft)
                for student in d.students:
                    labels = {"student": student, "samples": m, "filter": f, "rating_only": rating_only,
                              "method": "direct" if rating_only else "cot"}
                    tune = Cell(f"{domain}/distill/{slug(student)}-m{m}-{f}-{target}", "finetune", domain, labels,
                                (sft.name,))
                    cells.append(tune)
                    cells.append(Cell(f"{tune.name}/predict", "predict", domain,
                                      {**labels, "model": f"@{tune.name}", "ablation": "none"}, (tune.name, *data)))
    return cells


def _config(cls: Any, given: dict[str, Any], extra: dict[str, Any], what: str) -> Any:
    """Build the distillation step's config from our keys plus the config file's pass-through keys."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(k for k in extra if k not in names)
    if unknown:
        raise ValueError(f"distill.{what}: unknown key(s) {unknown} for {cls.__name__} (known: {sorted(names)})")
    kwargs = {k: v for k, v in given.items() if k in names}
    kwargs.update(extra)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ValueError(f"distill.{what}: {cls.__name__}: {e}") from None


def sample_config(runner: ExperimentRunner, cell: Cell) -> Any:
    d = runner.cfg.distill
    assert d is not None
    cls = _api("distill").DistillSampleConfig
    given = {"data": str(runner.data_dir(cell.domain)), "split": d.train_split, "model": cell.labels["teacher"],
             "samples": cell.labels["samples"], "cache": runner.cache, "limit": runner.cfg.predict.limit,
             "n_ctx": runner.cfg.predict.n_ctx, "base_urls": runner.cfg.predict.base_urls,
             "balance": runner.cfg.predict.balance,
             # where the teacher runs follows the predict section (not hashed: steps/cells.py NOT_HASHED)
             **{k: getattr(runner.cfg.predict, k) for k in ("executor", "ray_address", "ray_actors", "ray_cpus",
                                                             "ray_gpus")}}
    return _config(cls, given, dict(d.sample), "sample")


def finetune_config(runner: ExperimentRunner, cell: Cell) -> Any:
    d = runner.cfg.distill
    assert d is not None
    cls = _api("finetune").FinetuneConfig
    sft = str(runner.path(cell.deps[0]))
    store = RunStore(runner.path(cell.name))
    # A run killed mid-training left checkpoints but no cell.json: continue it (run_finetune checks
    # that the settings still match).
    resume = (store.folder / "checkpoints").is_dir() and not store.cell_path.exists()
    given = {"model": cell.labels["student"], "train": sft, "resume": resume}
    return _config(cls, given, dict(d.finetune), "finetune")


def student_model(runner: ExperimentRunner, tune_cell: str) -> str:
    store = RunStore(runner.path(tune_cell))
    if not store.cell_path.exists():
        raise ValueError(f"{store.folder}: the student is not trained yet (no {CELL})")
    model = (store.read_cell() or {}).get("result", {}).get("model")
    # The finetune step saves a transformers checkpoint (or adapter) in its folder: `hf/<folder>` runs it.
    return str(model) if model else f"hf/{store.folder.resolve()}"



class SampleStep:
    """Teacher samples on the train split (`run_distill_sample`)."""

    kind: ClassVar[str] = "distill-sample"
    outputs: ClassVar[tuple[str, ...]] = ()

    def settings(self, runner: ExperimentRunner, cell: Cell) -> Any:
        return sample_config(runner, cell)

    def run(self, runner: ExperimentRunner, cell: Cell, folder: Path) -> dict[str, Any]:
        with runner.generation() as (on_start, on_result):
            return dict(_api("distill").run_distill_sample(sample_config(runner, cell), folder, on_result=on_result,
                                                           on_start=on_start))


class SftStep:
    """One SFT set per filter and target (`build_sft`); its settings are its labels and its dep."""

    kind: ClassVar[str] = "sft"
    outputs: ClassVar[tuple[str, ...]] = ()

    def settings(self, runner: ExperimentRunner, cell: Cell) -> Any:
        return {}

    def run(self, runner: ExperimentRunner, cell: Cell, folder: Path) -> dict[str, Any]:
        return dict(_api("distill").build_sft(runner.path(cell.deps[0]), cell.labels["filter"], folder,
                                              rating_only=cell.labels["rating_only"]))


class FinetuneStep:
    """One student per base model and SFT set (`run_finetune`)."""

    kind: ClassVar[str] = "finetune"
    outputs: ClassVar[tuple[str, ...]] = ()

    def settings(self, runner: ExperimentRunner, cell: Cell) -> Any:
        return finetune_config(runner, cell)

    def run(self, runner: ExperimentRunner, cell: Cell, folder: Path) -> dict[str, Any]:
        store = RunStore(folder)
        if store.cell_path.exists():
            # Settings changed since this student was trained: keep the old one beside, train afresh.
            old = (store.read_cell() or {}).get("hash", "old")
            folder.rename(folder.with_name(f"{folder.name}.stale-{old}"))
        return dict(_api("finetune").run_finetune(finetune_config(runner, cell), folder))
