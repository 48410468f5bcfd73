"""Explanations written by any system, read from a JSONL file, to be scored against a Rec-SAVER pool.

`recsaver score --outputs FILE.jsonl --id-field F --text-field F [--rating-field F] --references REFS`:
one JSON object per line, with the example id (as in the references run), the explanation and, optionally,
the rating the system predicted (then the scores are also split by whether it equals the gold rating).
A `<think>...</think>` block (reasoning models) is kept apart as `thinking` and not scored. Problems name
the file, the line and the field; nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..data.sources import BadInputError
from ..prompts.parse import split_thinking

__all__ = ["Output", "load_outputs", "split_thinking"]


@dataclass(frozen=True)
class Output:
    """One external explanation: its line in the file, id, text to score, optional rating and thinking."""

    line: int
    example_id: str
    text: str
    rating: int | None = None
    thinking: str | None = None


def _rating(value: Any, path: Path, line: int, field: str) -> int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadInputError(path, line, field, f"not a rating: {value!r}") from None
    if not number.is_integer() or not 1 <= number <= 5:
        raise BadInputError(path, line, field, f"a rating must be a whole number from 1 to 5, got {value!r}")
    return int(number)


def load_outputs(path: Path, id_field: str, text_field: str, rating_field: str | None = None) -> list[Output]:
    """Every line of `path` as an Output; the first problem raises BadInputError (FILE:LINE: field '...': ...)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such outputs file")
    out: list[Output] = []
    first_line: dict[str, int] = {}
    with open(path, "rb") as f:
        for line, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise BadInputError(path, line, None, f"not valid JSON ({e})", kind="malformed") from None
            if not isinstance(record, dict):
                raise BadInputError(path, line, None, f"expected a JSON object, got {type(record).__name__}")
            for field in (id_field, text_field):
                if record.get(field) is None:
                    known = ", ".join(sorted(record)) or "none"
                    raise BadInputError(path, line, field, f"missing (fields on this line: {known}; choose them "
                                                           "with --id-field / --text-field)", kind="missing")
            example_id, text = str(record[id_field]), record[text_field]
            if not isinstance(text, str):
                raise BadInputError(path, line, text_field, f"expected text, got {type(text).__name__}")
            if example_id in first_line:
                raise BadInputError(path, line, id_field, f"{example_id!r} again (first on line "
                                                          f"{first_line[example_id]}): one output per example")
            first_line[example_id] = line
            rating = _rating(record.get(rating_field), path, line, rating_field) if rating_field else None
            thinking, rest = split_thinking(text)
            out.append(Output(line, example_id, rest, rating, thinking))
    if not out:
        raise BadInputError(path, None, None, "no outputs in the file", kind="empty")
    return out
