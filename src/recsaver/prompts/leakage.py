"""Leakage scrub for Rec-SAVER explanations (paper Section 3.1).

A post-hoc explanation is written knowing the gold rating, so sentences such as
"the user gave it a rating of 5" would let the verifier read the answer instead
of reasoning to it. Each sentence that matches a pattern is removed and kept in
an audit log; the rest of the explanation survives (rejecting a whole
explanation for one leaking sentence leaves almost nothing verified).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..config.schema import LEAK_PATTERNS

DEFAULT_PATTERNS = LEAK_PATTERNS  # declared in config/schema.py, the default of references --leak-pattern

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


@dataclass(frozen=True)
class ScrubResult:
    text: str
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scrubber:
    patterns: Sequence[str] = DEFAULT_PATTERNS
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        compiled = []
        for p in self.patterns:
            try:
                compiled.append(re.compile(p, re.I))
            except re.error as e:
                raise ValueError(f"leakage pattern {p!r} is not a valid regular expression: {e}") from None
        object.__setattr__(self, "_compiled", tuple(compiled))

    def leaks(self, sentence: str) -> bool:
        return any(p.search(sentence) for p in self._compiled)

    def scrub(self, text: str | None) -> ScrubResult:
        """Remove leaking sentences; keep paragraph breaks of what remains."""
        if not text:
            return ScrubResult("")
        kept_lines: list[str] = []
        removed: list[str] = []
        for line in text.replace("\r\n", "\n").split("\n"):
            kept: list[str] = []
            for sentence in _SENTENCE_END.split(line):
                sentence = sentence.strip()
                if not sentence:
                    continue
                (removed if self.leaks(sentence) else kept).append(sentence)
            kept_lines.append(" ".join(kept))
        cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(kept_lines)).strip()
        return ScrubResult(cleaned, tuple(removed))
