"""Rich tables for the terminal."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def metrics_table(result: dict[str, Any], title: str) -> Table:
    """A rating-metrics result (from `rating_metrics`) as a table with CIs and directions."""
    failed = result.get("n_failed") or 0
    table = Table(title=title, caption=f"n={result['n']}  unparsed={result['n_unparsed']} "
                                       f"({result['unparsed_share']:.1%})"
                                       + (f"  forced={result['forced_rating_share']:.0%}"
                                          if result.get("forced_rating_share") else "")
                                       + (f"  failed={failed} (left out: their calls errored)" if failed else ""))
    for col in ("metric", "value", "95% CI", "better"):
        table.add_column(col)
    for name, m in result["metrics"].items():
        table.add_row(name, f"{m['value']:.3f}", f"[{m['ci_low']:.3f}, {m['ci_high']:.3f}]",
                      "higher" if m["higher_is_better"] else "lower")
    return table
