"""`recsaver baseline|metrics|predict|score`: one step each, on a prepared data folder."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config.schema import PredictConfig, ScoreConfig
from ..store import RunStore
from .common import (
    DataOpt,
    FormatOpt,
    LimitOpt,
    OutputFormat,
    err_console,
    exit_if_incomplete,
    friendly_errors,
    generation_progress,
    out_console,
    print_metrics,
    write_formats,
)
from .options import with_config


def register(app: typer.Typer) -> None:
    for name, command in (("baseline", baseline), ("metrics", metrics), ("predict", predict), ("score", score)):
        app.command(name)(command)


@friendly_errors
def baseline(
    data: DataOpt,
    split: str = typer.Option("test", help="train | test"),
    out: Path = typer.Option(..., help="Run folder for predictions.jsonl, metrics.json, run.json."),
    limit: LimitOpt = None,
    format: FormatOpt = OutputFormat.jsonl,
) -> None:
    """Naive baseline: the user's historical average rating (paper Table 3)."""
    from ..steps.baseline import run_baseline

    metrics = run_baseline(data, split, out, limit)
    print_metrics(metrics, title=f"naive baseline ({split})")
    out_console.print(f"wrote {out}/predictions.jsonl, metrics.json, run.json")
    write_formats(out, format)


@friendly_errors
def metrics(
    predictions: Path = typer.Argument(..., help="A predictions.jsonl file."),
    out: Path | None = typer.Option(None, help="Where to write metrics.json (default: beside the predictions)."),
    resamples: int = typer.Option(1000, help="Bootstrap resamples for the 95% CIs."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
) -> None:
    """Rating metrics with bootstrap CIs; prints a table and writes metrics.json."""
    from ..data.records import load_predictions, write_json
    from ..metrics import rating_metrics

    result = rating_metrics(load_predictions(predictions), n_resamples=resamples, seed=seed)
    write_json(out or RunStore(predictions.parent).metrics_path, result)
    print_metrics(result, title=str(predictions))


@friendly_errors
@with_config(PredictConfig)
def predict(
    cfg: PredictConfig,
    out: Path = typer.Option(..., help="Run folder for predictions.jsonl, metrics.json, run.json."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    format: FormatOpt = OutputFormat.jsonl,
) -> None:
    """Zero-shot rating prediction, with reasoning (CoT) or without, and the paper's ablations."""
    from ..steps.predict import run_predict

    with generation_progress(progress) as (on_start, on_result):
        metrics = run_predict(cfg, out, on_result=on_result, on_start=on_start)
    if metrics["n"]:
        print_metrics(metrics, title=f"{cfg.model} {cfg.method} ablation={cfg.ablation} ({cfg.split})")
        for w in metrics.get("warnings", []):
            err_console.print(f"[bold yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
        out_console.print(f"wrote {out}/predictions.jsonl, metrics.json, run.json")
    else:
        out_console.print(f"no metrics: every one of the {metrics['n_failed']} predictions failed; "
                          f"wrote {out}/predictions.jsonl and run.json")
    write_formats(out, format)
    exit_if_incomplete(out)


@friendly_errors
@with_config(ScoreConfig)
def score(
    cfg: ScoreConfig,
    out: Path | None = typer.Option(None, help="Where to write text_scores.jsonl / text_metrics.json."),
    format: FormatOpt = OutputFormat.jsonl,
) -> None:
    """Reasoning quality against the verified reference pool: BLEU, ROUGE-1, METEOR, BERTScore."""
    from rich.table import Table

    from ..steps.score import run_score, score_outputs

    if format is OutputFormat.parquet and out is None:
        raise ValueError("--format parquet writes text_scores.parquet beside text_scores.jsonl: give --out")
    if cfg.outputs is not None:
        result = score_outputs(Path(cfg.outputs), Path(cfg.references), cfg.id_field, cfg.text_field,
                               cfg.rating_field, cfg.metrics or None, out, n_resamples=cfg.resamples, seed=cfg.seed)
    else:
        assert cfg.predictions is not None  # ScoreConfig checks that one of the two is given
        result = run_score(Path(cfg.predictions), Path(cfg.references), cfg.metrics or None, out,
                           n_resamples=cfg.resamples, seed=cfg.seed)
    split = result.get("by_correctness")
    table = Table(title=f"reasoning vs references ({result['overall']['n_scored']} scored, "
                        f"{result['overall']['n_excluded']} with an empty pool excluded)")
    for col in ("metric", "all", "95% CI", *(("correct", "incorrect") if split else ())):
        table.add_column(col)
    for name, m in result["overall"]["metrics"].items():
        cells = [name, f"{m['mean']:.3f}", f"[{m['ci_low']:.3f}, {m['ci_high']:.3f}]"]
        if split:
            cells += [f"{split[k]['metrics'].get(name, {}).get('mean', float('nan')):.3f}"
                      for k in ("correct", "incorrect")]
        table.add_row(*cells)
    out_console.print(table)
    missing = result.get("outputs_without_reference_entry")
    if missing:
        shown = ", ".join(result["ids_without_reference_entry"][:10])
        err_console.print(f"[bold yellow]warning:[/] {missing} of {result['outputs_read']} outputs have no entry in "
                          f"{cfg.references} and were not scored (ids: {shown}{', ...' if missing > 10 else ''}); "
                          "build references for those examples, or check --id-field", highlight=False, soft_wrap=True)
    if out is not None:
        write_formats(out, format)
