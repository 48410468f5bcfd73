"""The steps an experiment grid runs, one class per cell kind, behind one protocol (`GridStep`).

A step says what it writes (`outputs`, the resume check), what it runs with (`settings`: its step
config, or a plain mapping for the steps that have none) and how it runs (`run`). The runner
(experiment.py) treats every kind alike: it hashes `settings` less `NOT_HASHED`, skips a cell whose
hash and outputs are already there, and otherwise calls `run`. A new kind is one class and one line
in `STEPS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .. import store
from ..config.schema import PredictConfig, ReferencesConfig

if TYPE_CHECKING:
    from .experiment import Cell, ExperimentRunner

# Settings that never change a cell's outputs, the same for every kind: where the data, the SFT rows
# and the cache live (their identity enters the hash through the data fingerprint and the deps),
# whether a training run continues its checkpoints, which server answers a request, and how many
# sequences llama.cpp decodes together (the same outputs up to kernel rounding: backends/llama_batch.py),
# and whether openai/... calls go through the Batch API (the same request bodies, answered later), and where
# the engine runs (this process or Ray actors: the same requests, the same cache).
NOT_HASHED = ("data", "train", "cache", "resume", "balance", "parallel", "batch_api", "executor", "ray_address",
              "ray_actors", "ray_cpus", "ray_gpus")


class GridStep(Protocol):
    kind: ClassVar[str]
    outputs: ClassVar[tuple[str, ...]]

    def settings(self, runner: ExperimentRunner, cell: Cell) -> Any:
        """The step config this cell runs with (a dataclass), or a mapping of its settings."""
        ...

    def run(self, runner: ExperimentRunner, cell: Cell, folder: Path) -> dict[str, Any]:
        """Run the cell into `folder`; the returned summary goes into cell.json."""
        ...


# Fields added after cells were hashed that change results when set: hashed only away from this value, so the
# cells of earlier runs keep their hashes (`--nproc 2` doubles the global batch, so it is a new cell).
HASHED_UNLESS = {"nproc": 1}


def hashed(settings: Any) -> dict[str, Any]:
    """A cell's settings as they enter its hash."""
    values = asdict(settings) if is_dataclass(settings) and not isinstance(settings, type) else dict(settings)
    return {k: v for k, v in values.items()
            if k not in NOT_HASHED and not (k in HASHED_UNLESS and v == HASHED_UNLESS[k])}


def metric_values(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {name: m["value"] for name, m in metrics["metrics"].items()}


class DataStep:
    kind: ClassVar[str] = "data"
    outputs: ClassVar[tuple[str, ...]] = (store.TRAIN, store.TEST, store.STATS)

    def settings(self, runner: ExperimentRunner, cell: Cell) -> Any:
        return runner.cfg.prepare

    def run(self, runner: ExperimentRunner, cell: Cell, folder: Path) -> dict[str, Any]:
        from ..data.prepare import PrepareConfig, prepare
        from ..sample import sample_files

        spec = runner.cfg.domain(cell.domain)
        reviews, meta = (sample_files(cell.domain) if spec.sample
                         else (Path(str(spec.reviews)), Path(spec.meta) if spec.meta else None))
        # The prepare section is PrepareOptions, which PrepareConfig extends: the fields pass as they are.
        result = prepare(reviews, meta, folder, PrepareConfig(domain=cell.domain, **asdict(runner.cfg.prepare)))
        return {"examples": result.stats["examples"], "warnings": result.warnings}


class BaselineStep:
    kind: ClassVar[str] = "baseline"
    outputs: ClassVar[tuple[str, ...]] = (store.PREDICTIONS, store.METRICS, store.RUN)

    def settings(self, runner: ExperimentRunner, cell: Cell) -> Any:
        return {"split": runner.cfg.split, "limit": runner.cfg.predict.limit}

    def run(self, runner: ExperimentRunner, cell: Cell, folder: Path) -> dict[str, Any]:
        from .baseline import run_baseline

        s = self.settings(runner, cell)
        return {"metrics": metric_values(run_baseline(runner.data_dir(cell.domain), s["split"], folder, s["limit"]))}


class PredictStep:
    kind: ClassVar[str] = "predict"
    outputs: ClassVar[tuple[str, ...]] = (store.PREDICTIONS, store.METRICS, store.RUN)

    def settings(self, runner: ExperimentRunner, cell: Cell) -> PredictConfig:
        """The predict section's fields as they are, the grid's axes per cell. A student's model is its
        finetune cell ("@name"), which is a dep; `run` resolves it to the trained checkpoint."""
        p, method = runner.cfg.predict, cell.labels["method"]
        shared = {k: v for k, v in asdict(p).items() if k not in ("direct_max_tokens", "cache")}
        return PredictConfig(**{
            **shared, "data": str(runner.data_dir(cell.domain)), "split": runner.cfg.split,
            "model": cell.labels["model"], "method": method, "ablation": cell.labels.get("ablation", "none"),
            "max_tokens": p.max_tokens if method == "cot" else p.direct_max_tokens, "cache": runner.cache})

    def run(self, runner: ExperimentRunner, cell: Cell, folder: Path) -> dict[str, Any]:
        from dataclasses import replace

        from .predict import run_predict

        cfg = self.settings(runner, cell)
        if cfg.model.startswith("@"):
            from .experiment_distill import student_model

            cfg = replace(cfg, model=student_model(runner, cfg.model[1:]))
        with runner.generation() as (on_start, on_result):
            return {"metrics": metric_values(run_predict(cfg, folder, on_result=on_result, on_start=on_start))}


class ReferencesStep:
    kind: ClassVar[str] = "references"
    outputs: ClassVar[tuple[str, ...]] = (store.REFERENCES, store.SUMMARY, store.RUN)

    def settings(self, runner: ExperimentRunner, cell: Cell) -> ReferencesConfig:
        """The references section's fields, the engine fields of predict; `limit` falls back to predict's."""
        r, p = runner.cfg.references, runner.cfg.predict
        own = {k: v for k, v in asdict(r).items() if k not in ("verify", "enabled", "model")}
        engine = {k: getattr(p, k) for k in ("n_ctx", "base_urls", "concurrency", "parallel", "balance", "batch_api",
                                             "executor", "ray_address", "ray_actors", "ray_cpus", "ray_gpus")}
        return ReferencesConfig(**{
            **own, **engine, "data": str(runner.data_dir(cell.domain)), "split": runner.cfg.split,
            "model": cell.labels["model"], "verify": cell.labels["verify"],
            "limit": r.limit if r.limit is not None else p.limit, "cache": runner.cache})

    def run(self, runner: ExperimentRunner, cell: Cell, folder: Path) -> dict[str, Any]:
        from contextlib import nullcontext

        from .references import run_references

        bar = runner.hooks.examples("references") if runner.hooks.examples else nullcontext(None)
        with bar as update:
            summary = run_references(self.settings(runner, cell), folder, on_example=update)
        return {"coverage": summary["coverage"], "mean_pool_size": summary["mean_pool_size"]}


class ScoreStep:
    kind: ClassVar[str] = "score"
    outputs: ClassVar[tuple[str, ...]] = (store.TEXT_SCORES, store.TEXT_METRICS)

    def settings(self, runner: ExperimentRunner, cell: Cell) -> Any:
        s = runner.cfg.score
        return {"metrics": list(runner.metrics), "resamples": s.resamples, "seed": s.seed}

    def run(self, runner: ExperimentRunner, cell: Cell, folder: Path) -> dict[str, Any]:
        from .score import run_score

        predict_dir, refs_dir = (runner.path(d) for d in cell.deps)
        s = self.settings(runner, cell)
        result = run_score(predict_dir, refs_dir, s["metrics"], folder, n_resamples=s["resamples"], seed=s["seed"],
                           scorer=runner.scorer())
        return {"n_scored": result["overall"]["n_scored"],
                "means": {m: v["mean"] for m, v in result["overall"]["metrics"].items()}}


def _distill_steps() -> list[GridStep]:
    from .experiment_distill import FinetuneStep, SampleStep, SftStep

    return [SampleStep(), SftStep(), FinetuneStep()]


_ALL: tuple[GridStep, ...] = (DataStep(), BaselineStep(), PredictStep(), ReferencesStep(), ScoreStep(),
                              *_distill_steps())
STEPS: dict[str, GridStep] = {step.kind: step for step in _ALL}
