"""The public Python API: each step as one function with a typed config (`import recsaver`).

Every function takes either a config object or that config's fields as keywords, plus `out`, the
folder it writes; it returns what the command line prints (metrics, a summary) and writes exactly
what the command writes, through the same generation cache, so a run from Python and one from the
shell share every cached call.

    import recsaver
    reviews, meta = recsaver.sample_files("beauty")
    recsaver.prepare(reviews, meta, out="work/data", domain="beauty", train_per_label=4, test_per_label=2)
    metrics = recsaver.predict(data="work/data", method="cot", limit=2, out="work/cot")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config.schema import DistillSampleConfig, PredictConfig, ReferencesConfig, ScoreConfig
from .data.prepare import ImportConfig, PrepareConfig, PrepareResult
from .steps.finetune import FinetuneConfig

__all__ = ["DistillSampleConfig", "FinetuneConfig", "ImportConfig", "PredictConfig", "PrepareConfig",
           "ReferencesConfig", "ScoreConfig", "distill", "experiment", "finetune", "import_data", "predict", "prepare",
           "rebuild_references", "references", "report", "score"]


def prepare(reviews: str | Path, meta: str | Path | None = None, *, out: str | Path,
            config: PrepareConfig | None = None, **fields: Any) -> PrepareResult:
    """An Amazon review dump (and its metadata) -> OUT/train.jsonl, test.jsonl, stats.json."""
    from .data.prepare import prepare as run

    return run(Path(reviews), Path(meta) if meta else None, Path(out), config or PrepareConfig(**fields))


def import_data(interactions: str | Path, items: str | Path | None = None, *, out: str | Path,
                config: ImportConfig | None = None, **fields: Any) -> PrepareResult:
    """Your own interactions table (and items table) -> the files `prepare` writes (`recsaver data import`).
    Fields: ImportConfig's, e.g. `map=("rating=stars",)`, `rating_scale="1,10"`, `test_per_label=10`."""
    from .data.prepare import import_table

    return import_table(Path(interactions), Path(items) if items else None, Path(out),
                        config or ImportConfig(**fields))


def predict(config: PredictConfig | None = None, *, out: str | Path, **fields: Any) -> dict[str, Any]:
    """Zero-shot rating prediction -> OUT/predictions.jsonl, metrics.json, run.json; the metrics."""
    from .steps.predict import run_predict

    return run_predict(config or PredictConfig(**fields), Path(out))


def references(config: ReferencesConfig | None = None, *, out: str | Path, **fields: Any) -> dict[str, Any]:
    """Rec-SAVER references -> OUT/references.jsonl, summary.json, run.json; the summary."""
    from .steps.references import run_references

    return run_references(config or ReferencesConfig(**fields), Path(out))


def score(predictions: str | Path | None = None, references: str | Path | None = None, *,
          config: ScoreConfig | None = None, out: str | Path | None = None, **fields: Any) -> dict[str, Any]:
    """Reasoning of a predict run (or, with `outputs=FILE.jsonl`, any system's explanations) against a
    references pool (BLEU, ROUGE-1, METEOR, BERTScore...); the aggregates. Settings: `metrics`, `resamples`,
    `seed`, `id_field`, `text_field`, `rating_field` (ScoreConfig)."""
    from .steps.score import run_score, score_outputs

    if config is None:
        if "metrics" in fields:
            fields["metrics"] = tuple(fields["metrics"])
        config = ScoreConfig(predictions=None if predictions is None else str(predictions),
                             references=str(references), **fields)
    dest = Path(out) if out else None
    if config.outputs is not None:
        return score_outputs(Path(config.outputs), Path(config.references), config.id_field, config.text_field,
                             config.rating_field, config.metrics or None, dest, n_resamples=config.resamples,
                             seed=config.seed)
    assert config.predictions is not None  # ScoreConfig checks that one of the two is given
    return run_score(Path(config.predictions), Path(config.references), config.metrics or None, dest,
                     n_resamples=config.resamples, seed=config.seed)


def rebuild_references(source: str | Path, verify: str, *, out: str | Path) -> dict[str, Any]:
    """A references run's pool under another verify mode, from its stored verifier outputs (no model call);
    the summary (`recsaver references rebuild`)."""
    from .steps.references import rebuild_references as rebuild

    return rebuild(Path(source), verify, Path(out))


def distill(config: DistillSampleConfig | None = None, *, out: str | Path, filters: Sequence[str] = ("none",),
            **fields: Any) -> dict[str, Any]:
    """Teacher samples -> OUT/teacher; one SFT set per filter -> OUT/sft-FILTER. The teacher summary, with
    `sft` (filter -> the SFT folder's stats)."""
    from .steps.distill import build_sft, run_distill_sample

    teacher = Path(out) / "teacher"
    summary = run_distill_sample(config or DistillSampleConfig(**fields), teacher)
    summary["sft"] = {f: build_sft(teacher, f, Path(out) / f"sft-{f}") for f in filters}
    return summary


def finetune(config: FinetuneConfig | None = None, *, out: str | Path, **fields: Any) -> dict[str, Any]:
    """Fine-tune a student on SFT rows (`train=` an SFT folder) -> OUT; the training metrics.
    `nproc=N` trains in N data-parallel processes (`executor="ray"`: as Ray Train workers)."""
    from .training.distributed import train

    return train(config or FinetuneConfig(**fields), Path(out))


def report(runs: Sequence[str | Path], *, out: str | Path = "report.html", title: str = "recsaver report"
           ) -> tuple[Path, Path]:
    """One self-contained HTML report (and Markdown beside it) over run or experiment folders."""
    from .reports.html import build_report

    return build_report([Path(r) for r in runs], Path(out), title=title)


def experiment(config: str | Path, *, out: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Run (or resume) an experiment config (e.g. configs/table3.yaml) -> OUT; the experiment record."""
    from .config import load_config
    from .steps.experiment import run_experiment

    return run_experiment(load_config(config, overrides), Path(out))
