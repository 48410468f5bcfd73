"""Table values and their three renderings: Markdown, HTML (via the Jinja template) and LaTeX.

A table is plain data (groups of labelled rows of formatted values with optional
significance markers), so the paper layouts in `report.paper` are written once and
every output format shows the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Value:
    """One formatted cell; `mark` is a significance marker, `note` a tooltip (p-value)."""

    text: str
    mark: str = ""
    note: str = ""

    @property
    def shown(self) -> str:
        return f"{self.text}{self.mark}"


@dataclass(frozen=True)
class Row:
    group: str
    label: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    caption: str = ""
    notes: tuple[str, ...] = ()
    label_header: str = "Method"
    group_header: str = "Domain"
    lower_is_better: tuple[str, ...] = field(default=())

    def header(self, column: str) -> str:
        return f"{column} ↓" if column in self.lower_is_better else column


def fmt(value: float | None, digits: int = 3) -> Value:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Value("–")
    return Value(f"{value:.{digits}f}")


def groups(table: Table) -> list[tuple[str, list[Row]]]:
    """Consecutive rows of the same group, in order (for row spans)."""
    out: list[tuple[str, list[Row]]] = []
    for row in table.rows:
        if out and out[-1][0] == row.group:
            out[-1][1].append(row)
        else:
            out.append((row.group, [row]))
    return out


# --------------------------------------------------------------------------- Markdown


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*")


def to_markdown(table: Table) -> str:
    lines = [f"### {table.title}", ""]
    if table.caption:
        lines += [table.caption, ""]
    head = [table.group_header, table.label_header, *(table.header(c) for c in table.columns)]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---", "---"] + ["---:"] * len(table.columns)) + "|")
    for group, rows in groups(table):
        for k, row in enumerate(rows):
            cells = [group if k == 0 else "", _md_escape(row.label), *(_md_escape(v.shown) for v in row.values)]
            lines.append("| " + " | ".join(cells) + " |")
    if not table.rows:
        lines.append("| (no rows: the cells this table needs are not in the runs) |" + " |" * (len(head) - 1))
    for note in table.notes:
        lines += ["", f"_{_md_escape(note)}_"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- HTML


def template_env() -> Any:
    """The Jinja environment of every report template, escaping every value (titles, run labels, paths and model
    text are untrusted; `select_autoescape` would not, since the files end in .j2). Pre-rendered HTML goes in as
    Markup (`table_html`, `css`)."""
    from jinja2 import Environment, PackageLoader

    return Environment(loader=PackageLoader("recsaver.reports", "templates"), autoescape=True)


def to_html(table: Table) -> Any:
    """One <table> with row-spanning group cells (Markup); used inside the Jinja page templates."""
    from markupsafe import Markup

    return Markup(template_env().get_template("table.html.j2").render(table=table, groups=groups(table)))


# --------------------------------------------------------------------------- LaTeX


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                  "↓": r"$\downarrow$", "–": "--", "✓": r"\checkmark", "✗": r"$\times$"}


def _tex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A booktabs tabular with the paper's layout (group label in the first column)."""
    spec = "ll" + "r" * len(table.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", f"\\caption{{{_tex(table.title)}}}",
             f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join([_tex(table.group_header), _tex(table.label_header),
                         *(_tex(table.header(c)) for c in table.columns)]) + r" \\", r"\midrule"]
    for g, (group, rows) in enumerate(groups(table)):
        if g:
            lines.append(r"\midrule")
        for k, row in enumerate(rows):
            first = f"\\multirow{{{len(rows)}}}{{*}}{{{_tex(group)}}}" if k == 0 else ""
            values = [_tex(v.text) + (f"$^{{{v.mark}}}$" if v.mark else "") for v in row.values]
            lines.append(" & ".join([first, _tex(row.label), *values]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [f"\\par\\footnotesize {_tex(n)}" for n in table.notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- files


def write_tables(tables: Sequence[Table], out: Path, title: str, latex: bool = True) -> list[Path]:
    """OUT/tables.md, OUT/tables.html (standalone, CSS inline) and OUT/tables.tex."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = f"# {title}\n\n" + "\n".join(to_markdown(t) for t in tables)
    page = template_env().get_template("tables.html.j2").render(
        title=title, tables=[(t, to_html(t)) for t in tables], css=css())
    written = [out / "tables.md", out / "tables.html"]
    _atomic_write(written[0], md)
    _atomic_write(written[1], page)
    if latex:
        written.append(out / "tables.tex")
        _atomic_write(written[2], "% needs \\usepackage{booktabs,multirow,amssymb}\n"
                      + "\n".join(to_latex(t) for t in tables))
    return written


def css() -> Any:
    """The reports' style sheet, as Markup: it goes into <style> unescaped (our own file)."""
    from importlib.resources import files

    from markupsafe import Markup

    return Markup((files("recsaver.reports") / "templates" / "report.css").read_text())


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
