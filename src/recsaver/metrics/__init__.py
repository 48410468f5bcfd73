"""Evaluation metrics."""

from recsaver.metrics.calibration import calibration, reliability
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
from recsaver.metrics.significance import compare, mcnemar, paired_bootstrap

__all__ = [
    "HIGHER_IS_BETTER",
    "METRIC_NAMES",
    "POSITIVE_THRESHOLD",
    "MetricValue",
    "calibration",
    "compare",
    "mcnemar",
    "paired_bootstrap",
    "point_metrics",
    "rating_metrics",
    "reliability",
    "substitute",
    "worst_rating",
]
