"""Filter, sort and page the list rows on the server, so the browser only ever holds one page.

The query is what the list page's form sends (every field optional); a bad value is a ValueError
with the field's name, which the app answers with 422.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .data import Row

FIXED_SORTS = ("example_id", "run", "domain", "gold", "pred", "correct", "status")
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Query:
    """One request of the list: filters (empty means any), sort key and direction, page."""

    run: int | None = None
    domain: str = ""
    gold: int | None = None
    pred: str = ""  # 1..5, or "none" for no rating
    correct: str = ""  # yes | no
    status: str = ""
    metric: str = ""  # keep rows that have this metric (within min..max when given)
    min: float | None = None
    max: float | None = None
    sort: str = "example_id"
    order: str = "asc"
    page: int = 1
    size: int = 50


def _check(query: Query, metric_names: Sequence[str]) -> None:
    if query.sort not in FIXED_SORTS and query.sort not in metric_names:
        raise ValueError(f"sort: one of {', '.join([*FIXED_SORTS, *metric_names])}, not {query.sort!r}")
    if query.order not in ("asc", "desc"):
        raise ValueError(f"order: asc or desc, not {query.order!r}")
    if query.metric and query.metric not in metric_names:
        raise ValueError(f"metric: one of {', '.join(metric_names) or '(none in these runs)'}, not {query.metric!r}")
    if query.pred and query.pred != "none" and query.pred not in ("1", "2", "3", "4", "5"):
        raise ValueError(f"pred: 1..5 or none, not {query.pred!r}")
    if query.correct not in ("", "yes", "no"):
        raise ValueError(f"correct: yes or no, not {query.correct!r}")
    if query.page < 1 or not 1 <= query.size <= MAX_PAGE_SIZE:
        raise ValueError(f"page must be >= 1 and size in 1..{MAX_PAGE_SIZE}")


def _keep(query: Query) -> Callable[[Row], bool]:
    pred = None if query.pred in ("", "none") else int(query.pred)
    correct = {"yes": True, "no": False}.get(query.correct)

    def keep(row: Row) -> bool:
        if query.run is not None and row.run != query.run:
            return False
        if (query.domain and row.domain != query.domain) or (query.gold is not None and row.gold != query.gold):
            return False
        if (query.pred == "none" and row.pred is not None) or (pred is not None and row.pred != pred):
            return False
        if correct is not None and row.correct is not correct:
            return False
        if query.status and row.status != query.status:
            return False
        if query.metric:
            value = row.metrics.get(query.metric)
            if value is None or value != value:
                return False
            if (query.min is not None and value < query.min) or (query.max is not None and value > query.max):
                return False
        return True

    return keep


def _value(row: Row, key: str) -> Any:
    if key in FIXED_SORTS:
        return getattr(row, key)
    value = row.metrics.get(key)
    return None if value is None or value != value else value  # NaN sorts with the missing


def select(rows: Sequence[Row], query: Query, metric_names: Sequence[str]) -> tuple[int, list[Row]]:
    """(number of rows matching, the rows of the requested page) - filtered, then sorted with rows that
    lack the sort value last in either direction, ties by example_id and run so pages are stable."""
    _check(query, metric_names)
    keep = _keep(query)
    kept = [r for r in rows if keep(r)] if _filters(query) else list(rows)
    have = [r for r in kept if _value(r, query.sort) is not None]
    lack = [r for r in kept if _value(r, query.sort) is None]
    have.sort(key=lambda r: (r.example_id, r.run))
    have.sort(key=lambda r: _value(r, query.sort), reverse=query.order == "desc")
    lack.sort(key=lambda r: (r.example_id, r.run))
    ordered = have + lack
    start = (query.page - 1) * query.size
    return len(ordered), ordered[start:start + query.size]


def _filters(query: Query) -> bool:
    return any((query.run is not None, query.domain, query.gold is not None, query.pred, query.correct,
                query.status, query.metric))
