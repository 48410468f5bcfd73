"""One rater's answer on one item, and the server-side validation every input goes through.

The web form and the CSV import both build answers with `parse_answer_fields`, so a value
the browser could never send (a forged POST, a spreadsheet typo) is refused the same way.

Dimensions (paper Section 3.2): coherence and insightfulness on 1-5 Likert scales,
faithfulness binary. Table 8 defines faithful reasoning as reasoning "without factual or
logical errors", so an answer marked faithful may not list an error type, and an answer is
complete only when an unfaithful one names at least one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# (key, label): Table 13's error types.
ERROR_TYPES: tuple[tuple[str, str], ...] = (
    ("stats", "Incorrect product statistics"),
    ("info", "Incorrect product information"),
    ("arith", "Arithmetic error"),
    ("other", "Other"),
)
ERROR_KEYS = tuple(k for k, _ in ERROR_TYPES)
MAX_NOTE_CHARS = 2000

DEFINITIONS: dict[str, str] = {
    "coherence": "Evaluate whether the generated reasoning makes sense and follows a clear and coherent logical "
                 "flow that reflects the reasons behind the user's preference.",
    "faithfulness": "Examine the presence of hallucination in the generated reasoning and whether it contains "
                    "fabricated information.",
    "insightfulness": "Assess the degree to which the generated reasoning delivers valuable, informative, "
                      "interesting or delightful insights into the user's preferences and purchasing patterns.",
}

_YES = {"yes", "y", "true", "1", "faithful"}
_NO = {"no", "n", "false", "0", "unfaithful"}


@dataclass(frozen=True)
class Answer:
    coherence: int | None = None
    faithful: bool | None = None
    insightfulness: int | None = None
    errors: frozenset[str] = field(default_factory=frozenset)
    note: str = ""

    @property
    def complete(self) -> bool:
        return (self.coherence is not None and self.insightfulness is not None and self.faithful is not None
                and (self.faithful or bool(self.errors)))


class AnswerError(ValueError):
    """Field -> message for every invalid input of one answer."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def _likert(value: str | None, name: str, errors: dict[str, str]) -> int | None:
    text = (value or "").strip()
    if not text:
        return None
    if text.endswith(".0"):
        text = text[:-2]
    if not text.isdigit() or not 1 <= int(text) <= 5:
        errors[name] = f"must be a whole number from 1 to 5, got {value!r}"
        return None
    return int(text)


def parse_faithful(value: str | None, errors: dict[str, str]) -> bool | None:
    text = (value or "").strip().lower()
    if not text:
        return None
    if text in _YES:
        return True
    if text in _NO:
        return False
    errors["faithfulness"] = f"must be yes or no, got {value!r}"
    return None


def parse_answer_fields(values: Mapping[str, str | None], error_keys: Iterable[str]) -> Answer:
    """Validate raw strings into an Answer; raise AnswerError naming each bad field.

    `values` holds coherence, faithfulness, insightfulness and note; `error_keys` the chosen
    error types (keys of ERROR_TYPES). Empty fields stay unanswered (a partial answer is saved
    so a rater can stop half-way), but a value that is present must be valid.
    """
    errors: dict[str, str] = {}
    coherence = _likert(values.get("coherence"), "coherence", errors)
    insight = _likert(values.get("insightfulness"), "insightfulness", errors)
    faithful = parse_faithful(values.get("faithfulness"), errors)
    chosen = [k.strip().lower() for k in error_keys if k and k.strip()]
    unknown = [k for k in chosen if k not in ERROR_KEYS]
    if unknown:
        errors["errors"] = f"unknown error type(s) {unknown}; known: {list(ERROR_KEYS)}"
    elif faithful and chosen:
        errors["errors"] = "an answer marked faithful cannot list error types (untick them or choose 'no')"
    note = (values.get("note") or "").replace("\r\n", "\n").strip()
    if len(note) > MAX_NOTE_CHARS:
        errors["note"] = f"at most {MAX_NOTE_CHARS} characters, got {len(note)}"
    if any(ch in note for ch in "\x00\x0b\x0c"):
        errors["note"] = "contains control characters"
    if errors:
        raise AnswerError(errors)
    return Answer(coherence, faithful, insight, frozenset(chosen), note)
