"""The paper's naive baseline (Table 3): predict the user's historical average rating."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..data.records import Example, Prediction, load_examples, write_jsonl
from ..metrics import rating_metrics
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
    source = Path(data) / f"{split}.jsonl"
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such split file (run `recsaver data prepare` first)")
    examples = load_examples(source)[:limit] if limit else load_examples(source)
    if not examples:
        raise ValueError(f"{source}: no examples")
    predictions = predict_baseline(examples)
    out = Path(out)
    write_jsonl(out / "predictions.jsonl", (p.to_dict() for p in predictions))
    metrics = rating_metrics(predictions)
    write_run(out, step="baseline", config={"data": str(data), "split": split, "limit": limit}, data_file=source,
              metrics=metrics)
    return metrics
