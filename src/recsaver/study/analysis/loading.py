"""The study's answers as item x rater matrices, and the NLG metric scores of the same items."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...metrics.text.registry import text_metrics
from ...store import load_text_scores
from ..answers import ERROR_KEYS
from ..db import StudyDB

DIMENSIONS = ("coherence", "faithfulness", "insightfulness")
LIKERT = (1, 2, 3, 4, 5)
METRIC_ORDER = text_metrics()  # the metric registry's order


@dataclass
class StudyData:
    """Complete answers as item x rater matrices (nan: not rated), plus each item's identity."""

    item_ids: list[int]
    keys: list[tuple[int, str]]  # (run_id, example_id)
    correct: np.ndarray  # bool per item
    raters: list[str]
    scores: dict[str, np.ndarray]  # dimension or "err_<key>" -> (items, raters)


def load_study(study: Path) -> StudyData:
    with StudyDB(study) as db:
        items = db.items()
        rows = db.answer_rows(complete_only=True)
        raters = [r.name for r in db.raters()]
    index = {it.item_id: k for k, it in enumerate(items)}
    col = {name: k for k, name in enumerate(raters)}
    names = [*DIMENSIONS, *(f"err_{k}" for k in ERROR_KEYS)]
    scores = {n: np.full((len(items), len(raters)), np.nan) for n in names}
    for r in rows:
        i, j = index[r["item_id"]], col[r["rater"]]
        scores["coherence"][i, j] = r["coherence"]
        scores["faithfulness"][i, j] = r["faithful"]
        scores["insightfulness"][i, j] = r["insightfulness"]
        for k in ERROR_KEYS:
            scores[f"err_{k}"][i, j] = r[f"err_{k}"]
    correct = np.array([it.rating_pred is not None and it.rating_pred == it.rating_true for it in items])
    return StudyData([it.item_id for it in items], [(it.run_id, it.example_id) for it in items], correct,
                     raters, scores)


def load_scores(study: Path, folders: Sequence[Path], keys: list[tuple[int, str]]) -> dict[str, np.ndarray]:
    """NLG metric per item (nan where an item has no score) from text_scores.jsonl folders.

    One folder serves every run (matched by example_id); otherwise give one per run, in the
    order of the runs passed to `study create`.
    """
    with StudyDB(study) as db:
        run_ids = [r["run_id"] for r in db.runs()]
    if len(folders) not in (1, len(run_ids)):
        raise ValueError(f"give one scores folder, or one per run ({len(run_ids)} runs); got {len(folders)}")
    if len(folders) == 1 and len({eid for _, eid in keys}) < len(keys):
        raise ValueError("several runs share example ids: pass one --scores folder per run, in the runs' order")
    tables = [load_text_scores(Path(folder)) for folder in folders]
    metrics = [m for m in text_metrics() if any(m in row for t in tables for row in t.values())]
    out = {m: np.full(len(keys), np.nan) for m in metrics}
    for i, (run_id, eid) in enumerate(keys):
        table = tables[0] if len(tables) == 1 else tables[run_ids.index(run_id)]
        row = table.get(eid)
        for m in metrics:
            if row is not None and row.get(m) is not None:
                out[m][i] = float(row[m])
    return out


def item_means(data: StudyData, dim: str) -> np.ndarray:
    m = data.scores[dim]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(m, axis=1)
