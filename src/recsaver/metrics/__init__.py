"""Evaluation metrics."""

from recsaver.metrics.rating import (
    HIGHER_IS_BETTER,
    METRIC_NAMES,
    POSITIVE_THRESHOLD,
    MetricValue,
    point_metrics,
    rating_metrics,
    substitute,
    worst_rating,
)

__all__ = [
    "HIGHER_IS_BETTER",
    "METRIC_NAMES",
    "POSITIVE_THRESHOLD",
    "MetricValue",
    "point_metrics",
    "rating_metrics",
    "substitute",
    "worst_rating",
]
