"""Constrained decoding of the answer format: a llama.cpp GBNF grammar and an equivalent regex.

Two lessons from runs with small models (shared/design/MODELS.md):
- every line end must offer the rating header; a grammar that forbids stopping
  makes the model ramble. A reasoning line cannot start with '#', so after any
  line the model may either write another line or open "### Rating ###";
- the reasoning must be bounded so that the rating still fits inside
  max_tokens (`budget_lines`), or some answers end inside the reasoning.
  Bounded repetition (`[^\n]{0,300}`) is very slow in llama.cpp's grammar
  engine (measured here: 80 tokens took 5x longer than with `[^\n]*`), so
  `max_line_chars=None` gives unbounded lines; `recsaver predict` uses that and
  forces the rating header itself when an answer runs out of tokens.

A line may be followed by one blank line, so `PromptBuilder.answer` (which puts
a blank line before the rating header) and paragraphs are both in the language.
"""

from __future__ import annotations

import math

_METHODS = ("cot", "direct")


def _check(method: str, max_lines: int, max_line_chars: int | None) -> None:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if max_lines < 1 or (max_line_chars is not None and max_line_chars < 1):
        raise ValueError(f"need max_lines >= 1 and max_line_chars >= 1, got {max_lines}, {max_line_chars}")


def rating_grammar(method: str = "cot", max_lines: int = 6, max_line_chars: int | None = 300) -> str:
    """GBNF: for cot a Reason block of 1..max_lines lines of at most max_line_chars, then the rating."""
    _check(method, max_lines, max_line_chars)
    if method == "direct":
        return 'root ::= "### Rating ###\\n" [1-5]\n'
    lines = " ".join(["line"] + ["line?"] * (max_lines - 1))
    return (f'root ::= "### Reason ###\\n" {lines} "### Rating ###\\n" [1-5]\n'
            f"{_line_rule(max_line_chars)}")


def explanation_grammar(max_lines: int = 6, max_line_chars: int | None = 300) -> str:
    """GBNF for a Rec-SAVER step-1 answer: a bounded Reason block and nothing else."""
    _check("cot", max_lines, max_line_chars)
    lines = " ".join(["line"] + ["line?"] * (max_lines - 1))
    return f'root ::= "### Reason ###\\n" {lines}\n{_line_rule(max_line_chars)}'


def _line_rule(max_line_chars: int | None) -> str:
    if max_line_chars is None:
        return 'line ::= [^#\\n] [^\\n]* "\\n" "\\n"?\n'
    tail = f" [^\\n]{{0,{max_line_chars - 1}}}" if max_line_chars > 1 else ""
    return f'line ::= [^#\\n]{tail} "\\n" "\\n"?\n'


def rating_regex(method: str = "cot", max_lines: int = 6, max_line_chars: int | None = 300) -> str:
    """The same language as `rating_grammar`, as a regex (vLLM guided decoding, outlines, servers)."""
    _check(method, max_lines, max_line_chars)
    if method == "direct":
        return r"### Rating ###\n[1-5]"
    if max_line_chars is None:
        tail = "[^\\n]*"
    else:
        tail = f"[^\\n]{{0,{max_line_chars - 1}}}" if max_line_chars > 1 else ""
    return rf"### Reason ###\n(?:[^#\n]{tail}\n\n?){{1,{max_lines}}}### Rating ###\n[1-5]"


def budget_lines(max_tokens: int, chars_per_token: float = 4.0, margin_tokens: int = 16,
                 max_line_chars: int = 300) -> tuple[int, int]:
    """(max_lines, max_line_chars) so that the longest reasoning the grammar allows still leaves room
    for the rating.

    The reasoning gets max_tokens - margin_tokens tokens (the margin pays for both headers and the
    digit: 11 tokens with SmolLM2's tokenizer); a line costs its characters / chars_per_token plus up
    to two tokens of newlines.
    """
    reason_tokens = max_tokens - margin_tokens
    per_line = max_line_chars / chars_per_token + 2
    if reason_tokens >= per_line:
        return math.floor(reason_tokens / per_line), max_line_chars
    chars = math.floor((reason_tokens - 2) * chars_per_token)
    if chars < 1:
        raise ValueError(f"max_tokens={max_tokens} leaves no room for reasoning after a margin of {margin_tokens}")
    return 1, chars


def validate_gbnf(grammar: str, root: str = "root") -> None:
    """Parse `grammar` with llama.cpp's own parser; ValueError if it rejects it.

    Needs llama-cpp-python (imported here only). No model is loaded: the parser runs without a vocabulary.
    """
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(None, grammar.encode(), root.encode())
    if not sampler:
        raise ValueError("llama.cpp could not parse the grammar (its message went to stderr)")
    llama_cpp.llama_sampler_free(sampler)
