"""`recsaver references [run] | rebuild | audit`: Rec-SAVER reference pools, rebuilt and audited.

`recsaver references --data ... --out ...` (no sub-command) runs the step, as it always has; `rebuild` and
`audit` read a finished run and call no model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from ..config.schema import VERIFY_HELP, ReferencesConfig
from .common import (
    FormatOpt,
    OutputFormat,
    count_progress,
    err_console,
    exit_if_incomplete,
    friendly_errors,
    out_console,
    write_formats,
)
from .options import with_config


class RunByDefault(TyperGroup):
    """A group whose `run` sub-command may be left out: `references --data D` is `references run --data D`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    group = typer.Typer(cls=RunByDefault, no_args_is_help=True,
                        help="Rec-SAVER references: generate (`run`, the default), `rebuild` under another verify "
                             "mode, `audit` verification.")
    group.command("run")(references)
    group.command("rebuild")(rebuild)
    group.command("audit")(audit)
    app.add_typer(group, name="references")


def _wide() -> Console:
    """A pipe or a file gets whole rows, not cut columns (print's own width is capped at the console's)."""
    return out_console if out_console.is_terminal else Console(width=200, soft_wrap=True)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def one_sided_pool(summary: dict[str, Any]) -> str | None:
    """What to say about a pool (summary.json) with no verified explanation of some gold rating, else None (also for
    an empty pool, which has its own message: print_pool's warning, the experiment's error)."""
    missing = [k for k, v in summary["pass_rate_per_label"].items() if v == 0]
    if not missing or not summary["coverage"]:
        return None
    return (f"no explanation of gold rating(s) {', '.join(missing)} was verified: scores and studies built on these "
            "pools cover the other ratings only (`recsaver references audit` compares the verify modes; `rebuild "
            "--verify calibrated|1-off|prob:TAU` or a stronger --verifier-model widen them)")


def print_pool(summary: dict[str, Any], out: Path) -> None:
    from ..steps.score import empty_pools_advice

    rates = summary["pass_rate_per_label"]
    line = (f"verify {summary['verify']}: coverage {summary['coverage']:.1%}, mean pool size "
            f"{summary['mean_pool_size']:.2f}, {summary['scrub']['sentences_removed']} leaking sentences removed; "
            f"pass rate per label: " + ", ".join(f"{k}: {_rate(v)}" for k, v in rates.items()))
    if summary.get("negatives"):
        line += f"; false accepts {_rate(summary['false_accept_rate'])} of {summary['negatives']} negatives"
    out_console.print(line, highlight=False)
    if summary["examples"] and summary["coverage"] == 0:
        err_console.print(f"[bold yellow]warning:[/] every reference pool is empty: {empty_pools_advice(out)}",
                          highlight=False, soft_wrap=True)
    elif one_sided := one_sided_pool(summary):
        err_console.print(f"[bold yellow]warning:[/] {one_sided}", highlight=False, soft_wrap=True)
    if summary.get("probe_failures"):
        err_console.print(f"[yellow]warning:[/] {summary['probe_failures']} verifier probabilities could not be "
                          "read (see probs_error in references.jsonl): only exact, 1-off and none can use them",
                          highlight=False, soft_wrap=True)


@friendly_errors
@with_config(ReferencesConfig)
def references(
    cfg: ReferencesConfig,
    out: Path = typer.Option(..., help="Folder for references.jsonl, summary.json, run.json."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    format: FormatOpt = OutputFormat.jsonl,
) -> None:
    """Rec-SAVER: post-hoc explanations of the gold rating, leakage scrub, self-verification."""
    from ..steps.references import run_references

    with count_progress(progress, "examples") as update:
        summary = run_references(cfg, out, on_example=update)
    print_pool(summary, out)
    out_console.print(f"wrote {out}/references.jsonl, summary.json, run.json")
    write_formats(out, format)
    exit_if_incomplete(out)


@friendly_errors
def rebuild(
    source: Path = typer.Argument(..., help="A references run folder."),
    verify: str = typer.Option(..., help=f"The verify mode of the new pool: {VERIFY_HELP}."),
    out: Path = typer.Option(..., help="New folder for references.jsonl, summary.json, run.json."),
    format: FormatOpt = OutputFormat.jsonl,
) -> None:
    """The pool under another verify mode, from the stored verifier outputs (no model call)."""
    from ..steps.references import rebuild_references

    summary = rebuild_references(source, verify, out)
    print_pool(summary, out)
    out_console.print(f"wrote {out}/references.jsonl, summary.json, run.json")
    write_formats(out, format)


@friendly_errors
def audit(
    runs: list[Path] = typer.Argument(..., help="References run folders (e.g. the cells of a grid)."),
    mode: list[str] = typer.Option([], help="Verify modes to compare (repeatable; default: every mode the "
                                            "stored values allow)."),
    confusion: str | None = typer.Option(None, help="Print the verifier's 5x5 confusion matrix under this mode."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the audit of every run here."),
) -> None:
    """Recall per gold label, false accepts of the negative control, confusion and the writer's faithfulness."""
    from rich.table import Table

    from ..metrics.verification_audit import AUDIT_MODES
    from ..metrics.verification_audit import audit as run_audit
    from ..reports.html import faithfulness_rows
    from ..store import RunStore

    results = {str(r): run_audit(RunStore(r).read_reference_rows(), mode or AUDIT_MODES) for r in runs}
    # Pools of one experiment that differ only in their verify mode share every candidate and verifier output,
    # so their audits are equal: print each distinct audit once and say which runs share it.
    first_of: dict[str, str] = {}
    same_as: dict[str, str] = {}
    for run, result in results.items():
        same_as[run] = first_of.setdefault(json.dumps(result, sort_keys=True), run)
    shown = {run: result for run, result in results.items() if same_as[run] == run}
    table = Table(title="verification audit: pass rate per gold label (recall), coverage, false accepts")
    for col in ("run", "mode", "1", "2", "3", "4", "5", "min", "coverage", "false acc.", "negatives"):
        table.add_column(col)
    for run, result in shown.items():
        for name, m in result["modes"].items():
            rates = m["pass_rate_per_label"]
            table.add_row(run, name, *(_rate(rates[str(k)]) for k in range(1, 6)), _rate(m["min_pass_rate"]),
                          _rate(m["coverage"]), _rate(m["false_accept_rate"]), str(m["negatives"]))
    _wide().print(table)
    for run, first in same_as.items():
        if run != first:
            out_console.print(f"{run}: the same audit as {first} (not repeated)", highlight=False)
    faith = Table(title="writer faithfulness: the judge reads the rating explained (argmax; within one); "
                        "calibrated: the judge's content-free prior divided out")
    for col in ("run", "judge", "judged", "1", "2", "3", "4", "5", "all"):
        faith.add_column(col)
    for run, result in shown.items():
        for f in faithfulness_rows(result):
            faith.add_row(run, f["judge"], str(f["judged"]), *f["rates"], f["overall"])
    if faith.row_count:
        _wide().print(faith)
    if confusion:
        for run, result in shown.items():
            m = result["modes"].get(confusion)
            if m is None:
                err_console.print(f"[yellow]warning:[/] {run}: no mode {confusion} in the audit", highlight=False)
                continue
            grid = Table(title=f"{run} ({confusion}): rows = rating explained, columns = verifier's answer")
            for col in ("explained", "1", "2", "3", "4", "5"):
                grid.add_column(col)
            for k, row in enumerate(m["confusion"], start=1):
                grid.add_row(str(k), *map(str, row))
            _wide().print(grid)
    if json_out:
        json_out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        out_console.print(f"wrote {json_out}")
