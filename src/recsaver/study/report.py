"""The alignment report: Markdown + self-contained HTML (plots embedded as base64 PNG).

Both formats render the same list of tables, so they cannot disagree. The plots are a
scatter with a least-squares fit line per NLG metric (coherence and insightfulness, item
means) and box plots of every score for faithful vs unfaithful items.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.records import write_json
from ..metrics.text.registry import REGISTRY
from ..metrics.text.registry import label as metric_label
from .analysis import AnalysisConfig, analyze, faithful_items, item_means, load_scores, load_study

ERROR_LABELS = {"err_stats": "Incorrect product statistics", "err_info": "Incorrect product information",
                "err_arith": "Arithmetic errors", "err_other": "Others"}


@dataclass(frozen=True)
class Table:
    title: str
    caption: str
    header: list[str]
    rows: list[list[str]]


def _num(x: Any, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(p: Any) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    if p == 0:
        return "<1e-300"  # below double precision
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


def _ci(ci: list[float], digits: int = 2) -> str:
    return "–" if any(math.isnan(c) for c in ci) else f"[{_num(ci[0], digits)}, {_num(ci[1], digits)}]"


def tables(result: dict[str, Any]) -> list[Table]:
    out = []
    level = int(round(100 * result["config"]["level"]))
    t6 = result["table6_agreement"]
    out.append(Table(
        "Table 6: inter-annotator agreement",
        f"Quadratic-weighted Cohen's kappa and Pearson r averaged over rater pairs; {level}% bootstrap CIs over items.",
        ["", "Mean", "Mean CI", "Cohen κ", "κ CI", "Avg. ρ", "ρ CI", "p-value", "pairs"],
        [[dim.capitalize(), _num(v["mean"]), _ci(v["mean_ci"]), _num(v["kappa"]), _ci(v["kappa_ci"]),
          _num(v["pearson"]), _ci(v["pearson_ci"]), _p(v["p_value"]), str(v["n_pairs"])] for dim, v in t6.items()]))
    if "table7_correlations" in result:
        t7 = result["table7_correlations"]
        rows = []
        for m in result["metrics"]:
            row = [metric_label(m)]
            for dim in ("coherence", "insightfulness"):
                c = t7[dim][m]
                row += [f"{_num(c['pearson']['r'])} {_ci(c['pearson']['ci'])}", _p(c["pearson"]["p_value"]),
                        _num(c["spearman"]["r"]), _num(c["kendall"]["r"])]
            rows.append(row + [str(t7["coherence"][m]["n"])])
        out.append(Table("Table 7: human scores vs NLG metrics",
                         "Scores averaged over raters per item. Pearson r with CI and p-value; Spearman ρ; Kendall τ.",
                         ["", "Coh. r", "p", "Coh. ρ", "Coh. τ", "Ins. r", "p", "Ins. ρ", "Ins. τ", "n"], rows))
    t8 = result["table8_faithfulness"]
    out.append(Table(
        "Table 8: faithful vs unfaithful reasoning",
        f"Items labelled by majority of raters ({t8['ties_excluded']} ties left out); Welch's two-sample t-test; "
        "CI of the difference of means.",
        ["", "Faithful", "Unfaithful", "Difference CI", "p-value", "n (f/u)"],
        [[(metric_label(k) if k in REGISTRY else k.capitalize()), _num(v["faithful_mean"]), _num(v["unfaithful_mean"]),
          _ci(v["difference_ci"]), _p(v["p_value"]), f"{v['n_faithful']}/{v['n_unfaithful']}"]
         for k, v in t8["rows"].items()]))
    if "table9_verification" in result:
        t9 = result["table9_verification"]
        out.append(Table(
            "Table 9: coherence vs NLG metrics, with and without self-verified references",
            "Pearson r of mean coherence with each metric; the difference uses the same bootstrap resamples.",
            ["Self-verification", "Yes", "Yes CI", "No", "No CI", "Difference CI", "n"],
            [[metric_label(m), _num(v["verified"]["r"]), _ci(v["verified"]["ci"]), _num(v["unverified"]["r"]),
              _ci(v["unverified"]["ci"]), _ci(v["difference_ci"]), str(v["n"])] for m, v in t9.items()]))
    t13 = result["table13_correctness"]
    rows = []
    for name, label in [("coherence", "Coherence"), ("faithfulness", "Faithfulness"),
                        ("insightfulness", "Insightfulness"), *ERROR_LABELS.items()]:
        pct = name.startswith("err_")
        fmt = (lambda x: "–" if math.isnan(x) else f"{100 * x:.0f}%") if pct else _num
        row = [label]
        for group in ("incorrect", "correct"):
            v = t13[group][name]
            ci = "–" if math.isnan(v["ci"][0]) else f"[{fmt(v['ci'][0])}, {fmt(v['ci'][1])}]"
            row += [fmt(v["mean"]), ci]
        rows.append(row)
    out.append(Table(
        "Table 13: reasoning of incorrect vs correct predictions",
        f"Answer-level means; error types as the share of answers naming them. Items: "
        f"{t13['incorrect']['n_items']} incorrect, {t13['correct']['n_items']} correct.",
        ["", "Incorrect", "CI", "Correct", "CI"], rows))
    return out


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plots(study: Path, scores: list[Path]) -> dict[str, bytes]:
    """Scatter + fit line per metric (coherence, insightfulness), and faithful/unfaithful box plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = load_study(study)
    nlg = load_scores(study, scores, data.keys) if scores else {}
    human = {"coherence": item_means(data, "coherence"), "insightfulness": item_means(data, "insightfulness")}
    out: dict[str, bytes] = {}
    if nlg:
        fig, axes = plt.subplots(2, len(nlg), figsize=(3.2 * len(nlg), 6), squeeze=False,
                                 layout="constrained")
        for col, (m, v) in enumerate(nlg.items()):
            for row, (dim, h) in enumerate(human.items()):
                ax = axes[row][col]
                ok = ~np.isnan(v) & ~np.isnan(h)
                ax.scatter(v[ok], h[ok], s=14, alpha=0.6)
                if ok.sum() >= 2 and np.ptp(v[ok]) > 0:
                    slope, intercept = np.polyfit(v[ok], h[ok], 1)
                    xs = np.linspace(v[ok].min(), v[ok].max(), 20)
                    ax.plot(xs, slope * xs + intercept, color="C3")
                ax.set_xlabel(metric_label(m))
                ax.set_ylabel(f"mean {dim}")
        fig.suptitle("Human scores vs NLG metrics (one point per item)")
        out["scatter"] = _png(fig)
        plt.close(fig)
    label = faithful_items(data)
    panels = {**human, **nlg}
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.6), squeeze=False,
                             layout="constrained")
    for ax, (name, v) in zip(axes[0], panels.items()):
        groups = [v[(label == 1) & ~np.isnan(v)], v[(label == 0) & ~np.isnan(v)]]
        ax.boxplot(groups)
        ax.set_xticks([1, 2], ["faithful", "unfaithful"])
        ax.set_title(metric_label(name))
    fig.suptitle("Scores of faithful vs unfaithful items (majority of raters)")
    out["box"] = _png(fig)
    plt.close(fig)
    return out


def markdown(result: dict[str, Any], figures: dict[str, str]) -> str:
    lines = ["# Human alignment study", "",
             f"{result['n_items']} items, {result['n_items_rated']} rated, {result['n_answers']} complete answers "
             f"from {len(result['raters'])} raters.", ""]
    for t in tables(result):
        lines += [f"## {t.title}", "", t.caption, "", "| " + " | ".join(t.header) + " |",
                  "|" + "|".join("---" for _ in t.header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in t.rows]
        lines.append("")
    for name, path in figures.items():
        lines += [f"![{name}]({path})", ""]
    return "\n".join(lines)


def html(result: dict[str, Any], images: dict[str, bytes]) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                      autoescape=select_autoescape(["html"]))
    embedded = {k: base64.b64encode(v).decode() for k, v in images.items()}
    return env.get_template("report.html").render(result=result, tables=tables(result), images=embedded)


def write_report(study: Path, scores: list[Path], unverified: list[Path], out: Path,
                 cfg: AnalysisConfig = AnalysisConfig()) -> dict[str, Any]:
    """OUT/analysis.json, OUT/report.md (+ OUT/plots/*.png), OUT/report.html (self-contained)."""
    out = Path(out)
    result = analyze(study, scores, unverified, cfg)
    images = plots(study, scores)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    for name, png in images.items():
        (out / "plots" / f"{name}.png").write_bytes(png)
    write_json(out / "analysis.json", result)
    _write_text(out / "report.md", markdown(result, {k: f"plots/{k}.png" for k in images}))
    _write_text(out / "report.html", html(result, images))
    return result


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
