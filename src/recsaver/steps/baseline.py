"""The paper's naive baseline (Table 3): predict the user's historical average rating."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..data.records import Example, Prediction
from ..metrics import rating_metrics
from ..store import DataStore, RunStore
from .runs import write_run


def average_rating(example: Example) -> int:
    """Mean of the history's ratings, rounded half up (2.5 -> 3) into 1..5."""
    ratings = [h.rating for h in example.history]
    if not ratings:
        return 3
    return min(5, max(1, math.floor(sum(ratings) / len(ratings) + 0.5)))


def predict_baseline(examples: list[Example]) -> list[Prediction]:
    return [Prediction(e.example_id, e.rating, average_rating(e)) for e in examples]


def run_baseline(data: Path, split: str, out: Path, limit: int | None = None) -> dict[str, Any]:
    """Write RUN/predictions.jsonl, RUN/metrics.json and RUN/run.json; return the metrics."""
    data_store = DataStore(data)
    predictions = predict_baseline(data_store.load_split(split, limit))
    out = Path(out)
    RunStore(out).write_predictions(predictions)
    metrics = rating_metrics(predictions)
    write_run(out, step="baseline", config={"data": str(data), "split": split, "limit": limit},
              data_file=data_store.split_path(split), metrics=metrics)
    return metrics
