"""`recsaver report RUN...`: one self-contained HTML file (CSS inline, plots as base64 PNG) and Markdown.

A RUN is a predict or baseline run, a references folder, a score folder or an experiment
folder (its paper tables and every cell); `RunStore.kind` says which, from run.json's step
(experiment.json, cell.json, or the files of a folder without one). Nothing is recomputed
from a model: the report reads stored outputs only, through the run store.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.records import RATINGS
from ..store import EXPERIMENT_KIND, RATING_KINDS, NotARunError, RunStore, load_experiment
from .tables import Table, to_html, to_markdown

# The report's sections per folder kind (RunStore.kind): rating metrics, reference pools, text scores.
REPORT_KINDS = {**{k: "rating" for k in RATING_KINDS}, "references": "references", "score": "score"}


@dataclass
class Item:
    """One folder in the report."""

    label: str
    folder: Path
    kind: str  # rating | references | score
    run: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    step: str = ""  # the folder's kind as the run store reads it (predict, baseline, references, score)

    @property
    def store(self) -> RunStore:
        return RunStore(self.folder)


def classify(folder: Path, label: str | None = None) -> Item:
    store = RunStore(folder)
    step = store.kind()
    if step not in REPORT_KINDS:
        raise NotARunError(f"{store.folder}: a {step} folder, not a run the report shows (a predict, baseline, "
                           "references, score or experiment folder)")
    return Item(label or str(store.folder), store.folder, REPORT_KINDS[step], store.read_run(), step=step)


def collect(runs: Sequence[Path]) -> tuple[list[Item], list[Table], list[dict[str, Any]]]:
    """Items to show, the paper tables of experiment folders, and the experiment records."""
    from .paper import experiment_tables

    items: list[Item] = []
    tables: list[Table] = []
    experiments = []
    for run in runs:
        run = Path(run)
        if RunStore(run).kind() == EXPERIMENT_KIND:
            record = load_experiment(run)
            experiments.append({"folder": str(run), **record})
            tables += experiment_tables(run, record)[0]
            for cell in record["cells"]:
                cell_store = RunStore(run / cell["name"])
                if cell["kind"] in REPORT_KINDS and cell_store.cell_path.exists():
                    items.append(classify(cell_store.folder, f"{record['name']}/{cell['name']}"))
        else:
            items.append(classify(run))
    return items, tables, experiments


def runs_table(items: Sequence[Item], resamples: int, seed: int) -> Table | None:
    """Loose rating runs side by side, grouped by test data (pairing needs the same examples)."""
    from .paper import RatingRow, rating_table

    rating = [i for i in items if i.kind == "rating" and i.store.metrics_path.exists()]
    if not rating:
        return None
    rows = []
    for i in rating:
        data = (i.run or {}).get("data") or {}
        group = Path(data.get("path", "unknown data")).parent.name + f" ({str(data.get('sha256', ''))[:8]})"
        cfg = (i.run or {}).get("config", {})
        what = "baseline" if i.step == "baseline" else \
            f"{cfg.get('model', '?').split('/')[-1]} {cfg.get('method', '')} {cfg.get('ablation', '')}".strip()
        label = ("Naive Baseline (Avg.) " if i.step == "baseline" else "") + f"{i.label} [{what}]"
        text = None
        score = i.store.read_text_metrics()
        if score:
            text = {m: v["mean"] for m, v in score["overall"]["metrics"].items()}
        rows.append(RatingRow(group, label, i.folder, text))
    table, _ = rating_table("runs", "Runs compared", rows, reference="baseline", resamples=resamples, seed=seed,
                            label_header="Run", caption="Rows in a group share the same test file.")
    return table


def confusion(item: Item) -> dict[str, Any]:
    """Counts of (gold, predicted) ratings; an unparsed prediction gets its own column, a failed one none."""
    preds = [p for p in item.store.read_predictions() if not p.failed]
    matrix = {t: {p: 0 for p in (*RATINGS, None)} for t in RATINGS}
    for p in preds:
        matrix[p.rating_true][p.rating_pred] += 1
    peak = max(max(row.values()) for row in matrix.values()) or 1
    return {"matrix": matrix, "peak": peak, "n": len(preds)}


def calibration_section(item: Item) -> dict[str, Any] | None:
    from ..metrics.calibration import calibration
    from .plots import calibration_png

    preds = [p for p in item.store.read_predictions() if not p.failed]
    cal = calibration(preds)
    if not cal["n_with_probs"]:
        return None
    return {"cal": cal, "png": calibration_png(cal, item.label)}


def distribution_section(item: Item) -> dict[str, Any] | None:
    from .plots import histograms_png

    metrics = item.store.read_text_metrics()
    if metrics is None or not item.store.text_scores_path.exists():
        return None
    rows = item.store.read_text_scores()
    names = list(metrics["overall"]["metrics"])
    values = {m: [r[m] for r in rows if r.get(m) is not None] for m in names}
    return {"metrics": metrics, "png": histograms_png(values, item.label) if rows else None,
            "n_refs": [r["n_refs"] for r in rows]}


def coverage_section(item: Item) -> dict[str, Any]:
    from .plots import coverage_png

    summary = item.store.read_summary()
    if summary is None:
        raise FileNotFoundError(f"{item.store.summary_path}: a references folder without its summary "
                                "(rerun `recsaver references`)")
    return {"summary": summary, "png": coverage_png(summary, item.label), "audit": audit_rows(summary),
            "faithfulness": faithfulness_rows(summary.get("audit") or {})}


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.0%}"


def audit_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per verify mode of the summary's audit (metrics/verification_audit.py): pass rate per gold
    label, the lowest of them, coverage and the negative control's false-accept rate. Empty before issue 18."""
    modes = (summary.get("audit") or {}).get("modes") or {}
    return [{"mode": name, "rates": [_pct(m["pass_rate_per_label"][str(k)]) for k in range(1, 6)],
             "min": _pct(m["min_pass_rate"]), "coverage": _pct(m["coverage"]),
             "false_accept": _pct(m["false_accept_rate"]), "negatives": m["negatives"]}
            for name, m in modes.items()]


def faithfulness_rows(audit: dict[str, Any]) -> list[dict[str, Any]]:
    """The writer's faithfulness in an audit (`verification_audit.audit`) as the judge reads it, raw and (where the
    judge read a content-free explanation) calibrated: per rating explained "exact (within one)", and overall.
    Empty when the run had no judge."""
    raw = audit.get("faithfulness")
    rows = []
    for name, f in (("raw", raw), ("calibrated", (raw or {}).get("calibrated"))):
        if f:
            per_label, near = f["agreement_per_label"], f["within_one_per_label"]
            rows.append({"judge": name, "judged": f["judged"], "overall": _pct(f["agreement"]),
                         "rates": [f"{_pct(per_label[str(k)])} ({_pct(near[str(k)])})" for k in range(1, 6)]})
    return rows


def gallery_section(item: Item, k: int, seed: int) -> dict[str, Any] | None:
    """K examples of a predict run for the reader to read (the paper's Tables 10 and 14), picked by `seed` from
    the answered examples in example_id order, so runs on the same test data show the same examples."""
    import random

    if item.step != "predict" or k <= 0:
        return None
    preds = sorted((p for p in item.store.read_predictions() if not p.failed), key=lambda p: p.example_id)
    if not preds:
        return None
    chosen = sorted(random.Random(seed).sample(range(len(preds)), min(k, len(preds))))
    cfg = (item.run or {}).get("config") or {}
    method = " ".join(str(cfg.get(key, "")) for key in ("model", "method", "ablation")).strip()
    return {"method": method, "examples": [preds[i] for i in chosen]}


def ledger_rows(items: Sequence[Item]) -> list[dict[str, Any]]:
    rows = []
    for i in items:
        ledger = (i.run or {}).get("ledger")
        if ledger:
            rows.append({"label": i.label, "model": (i.run or {}).get("model_id", ""), **ledger})
    return rows


def build_report(runs: Sequence[Path], out: Path, title: str = "recsaver report", resamples: int = 1000,
                 seed: int = 0, gallery: int = 3) -> tuple[Path, Path]:
    """Write OUT (HTML) and OUT with .md; return both paths. `seed` also picks the `gallery` examples per
    predict run."""
    from .tables import css, template_env

    if not runs:
        raise ValueError("give at least one run folder")
    items, tables, experiments = collect(runs)
    loose = runs_table([i for i in items if not any(str(i.label).startswith(e["name"] + "/")
                                                    for e in experiments)], resamples, seed)
    if loose is not None:
        tables.append(loose)
    rating = [i for i in items if i.kind == "rating"]
    context = {
        "title": title,
        "inputs": [str(r) for r in runs],
        "tables": [(t, to_html(t)) for t in tables],
        "confusions": [(i, confusion(i)) for i in rating],
        "calibrations": [(i, c) for i in rating if (c := calibration_section(i))],
        "distributions": [(i, d) for i in items if i.kind in ("score", "rating") if (d := distribution_section(i))],
        "coverages": [(i, coverage_section(i)) for i in items if i.kind == "references"],
        "ledger": ledger_rows(items),
        "gallery": [(i, g) for i in rating if (g := gallery_section(i, gallery, seed))],
        "gallery_seed": seed,
        "gallery_k": gallery,
        "configs": [(e["name"], json.dumps(e["config"], indent=2)) for e in experiments]
        + [(i.label, json.dumps({k: (i.run or {}).get(k) for k in ("step", "config", "model_id", "data", "versions")
                                 if (i.run or {}).get(k) is not None}, indent=2)) for i in items if i.run],
        "ratings": list(RATINGS),
        "css": css(),
    }
    env = template_env()
    env.filters["num"] = num
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    md_path = out.with_suffix(".md")
    _write(out, env.get_template("report.html.j2").render(**context))
    _write(md_path, markdown(context, tables))
    return out, md_path


def num(value: Any, digits: int = 3) -> str:
    """A number for display; None and NaN (stored JSON writes NaN as null) show as a dash."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return f"{value:.{digits}f}"


def markdown(ctx: dict[str, Any], tables: Sequence[Table]) -> str:
    """The same report without figures (the HTML file has them)."""
    lines = [f"# {ctx['title']}", "", "Inputs: " + ", ".join(f"`{r}`" for r in ctx["inputs"]), "",
             "Plots (calibration curves, distributions, coverage) are in the HTML report.", "", "## Tables", ""]
    lines += [to_markdown(t) for t in tables]
    lines += ["## Confusion matrices", ""]
    for item, c in ctx["confusions"]:
        lines += [f"### {item.label}", "", "| gold \\ predicted | 1 | 2 | 3 | 4 | 5 | unparsed |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {t} | " + " | ".join(str(c["matrix"][t][p]) for p in (*RATINGS, None)) + " |" for t in RATINGS]
        lines.append("")
    lines += ["## Calibration (ECE)", "", "| run | n with P(1..5) | binary ECE | top-label ECE |",
              "|---|---:|---:|---:|"]
    lines += [f"| {i.label} | {c['cal']['n_with_probs']} | {num(c['cal']['binary']['ece'])} | "
              f"{num(c['cal']['top_label']['ece'])} |" for i, c in ctx["calibrations"]]
    lines += ["", "## Reasoning metrics", ""]
    for item, d in ctx["distributions"]:
        lines += [f"### {item.label}", "", "| metric | mean | 95% CI | min | max | std | n |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {m} | {num(v['mean'])} | [{num(v['ci_low'])}, {num(v['ci_high'])}] | {num(v['min'])} | "
                  f"{num(v['max'])} | {num(v['std'])} | {v['n']} |"
                  for m, v in d["metrics"]["overall"]["metrics"].items()]
        lines.append("")
    lines += ["## Reference coverage", "", "| references | coverage | mean pool size | verify |", "|---|---:|---:|---|"]
    lines += [f"| {i.label} | {num(c['summary']['coverage'])} | {num(c['summary']['mean_pool_size'], 2)} | "
              f"{c['summary']['verify']} |" for i, c in ctx["coverages"]]
    for i, c in ctx["coverages"]:
        if c["audit"]:
            lines += ["", f"### Verification audit: {i.label}", "",
                      "| mode | 1 | 2 | 3 | 4 | 5 | min | coverage | false accepts | negatives |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
            lines += [f"| {a['mode']} | {' | '.join(a['rates'])} | {a['min']} | {a['coverage']} | "
                      f"{a['false_accept']} | {a['negatives']} |" for a in c["audit"]]
        if c["faithfulness"]:
            lines += ["", f"Writer faithfulness (the judge reads the rating explained; exact (within one)): {i.label}",
                      "", "| judge | judged | 1 | 2 | 3 | 4 | 5 | all |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
            lines += [f"| {f['judge']} | {f['judged']} | {' | '.join(f['rates'])} | {f['overall']} |"
                      for f in c["faithfulness"]]
    lines += ["", "## Token and time ledger", "",
              "| run | requests | cache hits | misses | failed | prompt tok | completion tok | model s | wall s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['label']} | {r['requests']} | {r['cache_hits']} | {r['cache_misses']} | {r['failed']} | "
              f"{r['prompt_tokens']} | {r['completion_tokens']} | {r['model_seconds']} | "
              f"{r['wall_seconds_this_run']} |" for r in ctx["ledger"]]
    lines += ["", "## Examples", "",
              f"Per predict run, {ctx['gallery_k']} answered examples picked with seed {ctx['gallery_seed']}.", ""]
    for item, g in ctx["gallery"]:
        lines += [f"### {item.label} ({g['method']})", ""]
        for p in g["examples"]:
            pred = "–" if p.rating_pred is None else p.rating_pred
            source = f" ({p.rating_source})" if p.rating_source == "forced" else ""
            lines += [f"- `{p.example_id}`: gold {p.rating_true}, predicted {pred}{source}", ""]
            reasoning = html.escape(p.reasoning or "(no reasoning)", quote=False).splitlines() or [""]
            lines += [f"  > {line}" for line in reasoning] + [""]
    lines += ["", "## Configs", ""]
    for name, text in ctx["configs"]:
        lines += [f"### {name}", "", "```json", text, "```", ""]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
