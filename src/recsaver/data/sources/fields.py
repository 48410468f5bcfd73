"""Checks of single record fields (rating, time, ids, optional text), each error naming the field."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .lines import BadInputError


def _rating(value: Any, path: Path, lineno: int, name: str) -> int:
    if value is None:
        raise BadInputError(path, lineno, name, "missing required field (a rating 1-5)", "missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise BadInputError(path, lineno, name, f"expected a number 1-5, got {value!r}") from None
        else:
            raise BadInputError(path, lineno, name, f"expected a number 1-5, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value != int(value) or not 1 <= value <= 5:
        raise BadInputError(path, lineno, name, f"expected a whole rating 1-5, got {value!r}")
    return int(value)


def _time(value: Any, path: Path, lineno: int, name: str) -> int:
    if value is None:
        raise BadInputError(path, lineno, name, "missing required field (a Unix time)", "missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise BadInputError(path, lineno, name, f"expected an integer Unix time, got {value!r}")
    if value < 0:
        raise BadInputError(path, lineno, name, f"negative time {value!r}")
    return int(value)


def _ident(value: Any, path: Path, lineno: int, name: str) -> str:
    if isinstance(value, str) and value.strip():
        return value
    if value is None:
        raise BadInputError(path, lineno, name, "missing required field", "missing")
    raise BadInputError(path, lineno, name, f"expected a non-empty string, got {value!r}")


def _opt_text(value: Any, path: Path, lineno: int, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    raise BadInputError(path, lineno, name, f"expected text, got {type(value).__name__}")
