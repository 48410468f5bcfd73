"""Report figures as base64 PNG strings (matplotlib, Agg backend), ready for <img src="data:...">.

matplotlib is imported inside each function so that importing the report package
(the CLI does) stays cheap.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any


def _figure(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=(width, height), dpi=100)


def _png(plt: Any, fig: Any) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def calibration_png(cal: Mapping[str, Any], title: str) -> str:
    """Two reliability diagrams (binary P(r>3), top-label) with bin counts as bar widths' alpha."""
    plt, fig = _figure(7.2, 3.3)
    for k, (key, name) in enumerate((("binary", "binary: P(rating > 3)"), ("top_label", "5-class: top label"))):
        ax = fig.add_subplot(1, 2, k + 1)
        part = cal[key]
        bins = [b for b in part["bins"] if b["count"]]
        ax.plot([0, 1], [0, 1], ls="--", color="#8a95a3", lw=1, label="perfect")
        if bins:
            width = bins[0]["upper"] - bins[0]["lower"]
            ax.bar([b["lower"] for b in bins], [b["accuracy"] for b in bins], width=width, align="edge",
                   color="#4c78a8", alpha=0.35, edgecolor="#4c78a8", label="accuracy per bin")
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", color="#e45756",
                    ms=4, lw=1.2, label="mean confidence")
            for b in bins:
                ax.annotate(str(b["count"]), (b["lower"] + width / 2, 0.02), ha="center", fontsize=7,
                            color="#333")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("observed frequency")
        ax.set_title(f"{name}\nECE = {part['ece']:.3f} (n = {part['n']})", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=9)
    return _png(plt, fig)


def histograms_png(values: Mapping[str, Sequence[float]], title: str) -> str:
    """One histogram per metric of per-example values (on 0..1)."""
    names = [m for m, v in values.items() if len(v)]
    plt, fig = _figure(max(3.0, 2.6 * len(names)), 2.6)
    for k, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), k + 1)
        ax.hist(values[name], bins=10, range=(0, 1), color="#54a24b", edgecolor="white")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("score", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    return _png(plt, fig)


def coverage_png(summary: Mapping[str, Any], title: str) -> str:
    """Verification pass rate per gold label and the distribution of pool sizes."""
    plt, fig = _figure(6.4, 2.7)
    ax = fig.add_subplot(1, 2, 1)
    labels = list(summary["pass_rate_per_label"])
    rates = [summary["pass_rate_per_label"][k] or 0.0 for k in labels]
    ax.bar(labels, rates, color="#f58518")
    ax.set_ylim(0, 1)
    ax.set_xlabel("gold rating", fontsize=8)
    ax.set_title("verification pass rate", fontsize=9)
    ax = fig.add_subplot(1, 2, 2)
    hist = summary["pool_size_histogram"]
    ax.bar(list(hist), [hist[k] for k in hist], color="#72b7b2")
    ax.set_xlabel("references in pool", fontsize=8)
    ax.set_title(f"pool sizes (coverage {summary['coverage']:.0%})", fontsize=9)
    fig.suptitle(title, fontsize=9)
    return _png(plt, fig)
