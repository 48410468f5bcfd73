"""`recsaver report` on real run folders: an experiment (real SmolLM2 smoke run) and its single cells."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsaver.reports.html import build_report, classify
from tests.report.smoke import cli, smoke_experiment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return smoke_experiment(tmp_path_factory)["folder"]


def test_experiment_report_is_one_self_contained_file(smoke: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["report", str(smoke), "--out", str(tmp_path / "r" / "report.html"),
                                        "--resamples", "100"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r" / "report.html").read_text()
    assert not re.search(r'(src|href)="(https?:|//|file:)', html) and "<link" not in html and "<script" not in html
    for section in ("Table 3: zero-shot ablations", "Table 11", "Table 15", "Confusion matrices",
                    "Calibration of P(1..5)", "Reasoning-metric distributions", "Reference coverage",
                    "Token and time ledger", "Exact configs"):
        assert section in html, section
    # Calibration (the two model runs carry P(1..5)), metric histograms and the coverage chart.
    assert html.count("data:image/png;base64,") == 2 + 1 + 1
    assert '&#34;name&#34;: &#34;smoke&#34;' in html and "llamacpp/smollm2-135m" in html  # the config, escaped
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| Beauty | Naive Baseline (Avg.) |" in md and "## Token and time ledger" in md
    assert "| smoke/beauty/smollm2-135m/cot-none | 1 | 0 | 1 | 0 |" in md  # 1 request, a cache miss


def test_single_cells_are_recognised_and_compared(smoke: Path, tmp_path: Path) -> None:
    cells = {name: smoke / "beauty" / name for name in ("baseline", "smollm2-135m/cot-none",
                                                        "smollm2-135m/direct-none", "references-exact",
                                                        "smollm2-135m/cot-none/score-exact")}
    kinds = [classify(p).kind for p in cells.values()]
    assert kinds == ["rating", "rating", "rating", "references", "score"]
    html_path, md_path = build_report(list(cells.values()), tmp_path / "cells.html", resamples=50)
    md = md_path.read_text()
    assert "### Runs compared" in md and "Naive Baseline (Avg.)" in md
    summary = json.loads((cells["references-exact"] / "summary.json").read_text())
    assert f"| {summary['coverage']:.3f} | {summary['mean_pool_size']:.2f} | exact |" in md
    gold = json.loads((cells["baseline"] / "predictions.jsonl").read_text().splitlines()[0])["rating_true"]
    row = next(line for line in md.splitlines() if line.startswith(f"| {gold} | "))
    assert sum(int(v) for v in row.strip("| ").split(" | ")[1:]) >= 1  # the example is in the confusion matrix


def test_a_folder_that_is_not_a_run_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["report", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "not a run folder" in result.output and str(tmp_path) in result.output


def test_report_escapes_every_untrusted_value(tmp_path: Path) -> None:
    """Run labels, titles and model text are escaped in the HTML report (its templates end in .j2, which
    Jinja's select_autoescape would leave raw); the tables and the style sheet still render as HTML."""
    from recsaver.data.records import Prediction
    from recsaver.reports.html import build_report
    from recsaver.store import RunStore

    run = tmp_path / "<img src=x onerror=alert(1)>"
    xss = "</pre><script>alert('reasoning')</script>"
    RunStore(run).write_predictions([Prediction(f"e{i}", 1 + i % 5, 1 + (i * 2) % 5, reasoning=xss)
                                     for i in range(10)])
    html_path, _ = build_report([run], tmp_path / "r.html", title="<b>t</b>", resamples=20)
    page = html_path.read_text()
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>t</b>" not in page
    assert "&lt;script&gt;alert" in page and "&lt;b&gt;t&lt;/b&gt;" in page
    assert "<table" in page and "<style>" in page and "&lt;table" not in page and "&lt;style" not in page
