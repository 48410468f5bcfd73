"""Tables and plots from stored results."""

from .console import metrics_table

__all__ = ["metrics_table"]
