"""Table renderings (Markdown, HTML, LaTeX) of hand-built tables: same numbers, escaping, markers, spans."""

from __future__ import annotations

from pathlib import Path

from recsaver.reports.tables import Row, Table, Value, fmt, to_html, to_latex, to_markdown, write_tables

TABLE = Table(
    "table3", "Table 3: test", ("Binary Acc.", "Multi. MAE"),
    (Row("Beauty", "Naive Baseline (Avg.)", (Value("0.520"), Value("1.350"))),
     Row("Beauty", "Our Method | CoT", (Value("0.560", "*", "p = 0.03"), fmt(float("nan")))),
     Row("Movies/TV", "Naive Baseline (Avg.)", (fmt(0.59), fmt(1.2149)))),
    notes=("* p < 0.05",), lower_is_better=("Multi. MAE",))


def test_markdown_groups_rows_and_escapes() -> None:
    md = to_markdown(TABLE)
    lines = [line for line in md.splitlines() if line.startswith("|")]
    assert lines[0] == "| Domain | Method | Binary Acc. | Multi. MAE ↓ |"
    assert lines[2] == "| Beauty | Naive Baseline (Avg.) | 0.520 | 1.350 |"
    assert lines[3] == "|  | Our Method \\| CoT | 0.560\\* | – |"
    assert lines[4] == "| Movies/TV | Naive Baseline (Avg.) | 0.590 | 1.215 |"


def test_html_spans_groups_and_keeps_p_values_as_tooltips() -> None:
    html = to_html(TABLE)
    assert html.count("<tr") == 4 and 'rowspan="2">Beauty' in html and 'rowspan="1">Movies/TV' in html
    assert 'title="p = 0.03">0.560<sup class="sig">*</sup>' in html
    assert "Our Method | CoT" in html and "Multi. MAE ↓" in html


def test_latex_is_booktabs_with_escaped_text(tmp_path: Path) -> None:
    tex = to_latex(TABLE)
    assert "\\toprule" in tex and "\\multirow{2}{*}{Beauty}" in tex and "0.560$^{*}$" in tex
    assert "Multi. MAE $\\downarrow$" in tex and "--" in tex
    paths = write_tables([TABLE], tmp_path, title="t")
    assert [p.name for p in paths] == ["tables.md", "tables.html", "tables.tex"]
    page = (tmp_path / "tables.html").read_text()
    assert "<style>" in page and "table.paper" in page and "<link" not in page


def test_table3_reads_the_first_verified_pool_listed(tmp_path: Path) -> None:
    """configs/table3.yaml lists the recommended mode before the paper's `exact`: Table 3 scores against it."""
    from recsaver.reports.paper import Experiment

    def primary(verify: list[str], enabled: bool = True) -> str | None:
        record = {"config": {"references": {"enabled": enabled, "verify": verify}}, "cells": []}
        return Experiment(tmp_path, record).primary_verify

    assert primary(["calibrated-1-off", "exact", "none"]) == "calibrated-1-off"
    assert primary(["exact", "none"]) == "exact"
    assert primary(["none", "1-off"]) == "1-off"  # the unverified pool only when nothing else is listed
    assert primary(["none"]) == "none"
    assert primary(["exact"], enabled=False) is None and primary([]) is None
