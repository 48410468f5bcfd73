"""`make demo`: the main job on the built-in default (the shipped sample and SmolLM2 via llama.cpp).

Per domain: prepare the sample -> naive baseline -> zero-shot CoT and direct
prediction on a handful of test examples -> Rec-SAVER references (post-hoc
explanations, leakage scrub, self-verification) -> the CoT reasoning scored
against the verified pool -> one HTML report (report.html) over every run. Every model
call goes through the generation cache under OUT, so a second `make demo` is quick.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from ..config.schema import DEFAULT_MODEL
from ..data.prepare import PrepareConfig, prepare
from ..report import metrics_table
from ..sample import SAMPLE_DOMAINS, sample_files
from .baseline import run_baseline
from .predict import PredictConfig, run_predict
from .references import ReferencesConfig, run_references
from .score import EmptyPoolsError, run_score

# The sample has 10 users a domain; these sizes keep every split non-empty.
DEMO_SPLIT: dict[str, Any] = {"train_per_label": 4, "test_per_label": 2, "test_fraction": 0.3}


@dataclass(frozen=True)
class DemoConfig:
    model: str = DEFAULT_MODEL
    limit: int = 4
    max_tokens: int = 160
    ref_samples: int = 2
    ref_max_tokens: int = 96


def run_demo(out: Path, console: Console, progress: Callable[[bool], AbstractContextManager[Any]],
             generation_progress: Callable[[bool], AbstractContextManager[Any]] | None = None,
             cfg: DemoConfig = DemoConfig()) -> dict[str, Any]:
    out = Path(out)
    results: dict[str, Any] = {}
    for domain in SAMPLE_DOMAINS:
        reviews, meta = sample_files(domain)
        data_dir = out / domain / "data"
        with progress(True) as update:
            prepared = prepare(reviews, meta, data_dir, PrepareConfig(domain=domain, **DEMO_SPLIT), progress=update)
        for w in prepared.warnings:
            console.print(f"[yellow]warning:[/] {domain}: {w}", highlight=False)
        results[domain] = {"baseline": run_baseline(data_dir, "test", out / domain / "baseline", cfg.limit)}
        console.print(metrics_table(results[domain]["baseline"], f"{domain}: naive baseline (user average)"))
        for method in ("cot", "direct"):
            # Shorter CoT than the default, to keep the demo quick; direct and the grammar as everywhere.
            pcfg = PredictConfig(data=str(data_dir), model=cfg.model, method=method, limit=cfg.limit,
                                 max_tokens=cfg.max_tokens if method == "cot" else None,
                                 cache=str(out / "cache.sqlite"))
            console.print(f"{domain}: zero-shot {method} with {cfg.model} on {cfg.limit} test examples")
            if generation_progress is not None:
                with generation_progress(True) as (on_start, on_result):
                    metrics = run_predict(pcfg, out / domain / method, on_result=on_result, on_start=on_start)
            else:
                metrics = run_predict(pcfg, out / domain / method)
            results[domain][method] = metrics
            console.print(metrics_table(metrics, f"{domain}: zero-shot {method} ({cfg.model})"))
            for w in metrics.get("warnings", []):
                console.print(f"[bold yellow]warning:[/] {domain} {method}: {w}", highlight=False, soft_wrap=True)
        results[domain]["references"] = _references(cfg, data_dir, out, domain, console)
        results[domain]["text"] = _score(out, domain, console)
    from ..report.html import build_report

    runs = [out / d / step for d in SAMPLE_DOMAINS for step in ("baseline", "cot", "direct", "references",
                                                                "text_scores") if (out / d / step).exists()]
    html, _ = build_report(runs, out / "report.html", title="recsaver demo: built-in sample, " + cfg.model)
    console.print(f"demo outputs are in {out.resolve()}")
    console.print(f"report: {html.resolve()}")
    return results


def _references(cfg: DemoConfig, data_dir: Path, out: Path, domain: str, console: Console) -> dict[str, Any]:
    rcfg = ReferencesConfig(data=str(data_dir), model=cfg.model, samples=cfg.ref_samples, limit=cfg.limit,
                            max_tokens=cfg.ref_max_tokens, cache=str(out / "cache.sqlite"))
    console.print(f"{domain}: Rec-SAVER references, {cfg.ref_samples} explanations per example, self-verified")
    summary = run_references(rcfg, out / domain / "references")
    console.print(f"{domain}: reference coverage {summary['coverage']:.0%}, mean pool size "
                  f"{summary['mean_pool_size']:.2f}, {summary['scrub']['sentences_removed']} leaking sentences "
                  "removed", highlight=False)
    return summary


def _score(out: Path, domain: str, console: Console) -> dict[str, Any] | None:
    try:
        result = run_score(out / domain / "cot", out / domain / "references", out=out / domain / "text_scores")
    except EmptyPoolsError as e:  # said loudly, and the report shows no reasoning scores rather than empty ones
        console.print(f"[bold yellow]warning:[/] {domain}: no reasoning scores: {e}", highlight=False, soft_wrap=True)
        return None
    overall = result["overall"]["metrics"]
    console.print(f"{domain}: CoT reasoning against the verified pool "
                  f"({result['overall']['n_scored']} examples scored): "
                  + (", ".join(f"{k} {v['mean']:.3f}" for k, v in overall.items()) or
                     "no example has a verified reference (the small default model rarely verifies its own "
                     "explanations; try --model llamacpp/qwen2.5-0.5b)"), highlight=False)
    return result
