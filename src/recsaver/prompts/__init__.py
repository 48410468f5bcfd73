"""Prompts: versioned template text plus the one PromptBuilder / parse_answer pair that owns it.

`PromptBuilder` renders rating prompts (Table 12 CoT, Table 2 direct, the Section 4.2
ablations), answers in the exact output format, fine-tuning rows, and the Rec-SAVER
explanation and verification prompts (Section 3.1); `parse_answer` reads answers back;
`grammar` constrains decoding to the same format.
"""

from .builder import (
    ABLATIONS,
    DOMAIN_WORDS,
    METHODS,
    MISSING,
    RATING_HEADER,
    REASON_HEADER,
    Ablation,
    Method,
    OneShot,
    PromptBuilder,
    PromptOptions,
    PromptTooLongError,
    choose_one_shot,
)
from .grammar import budget_lines, explanation_grammar, rating_grammar, rating_regex, validate_gbnf
from .parse import ParsedAnswer, parse_answer, parse_explanation, scrub_explanation
from .rating import DIGITS, rating_continuation
from .templates import available_versions

__all__ = [
    "ABLATIONS", "DIGITS", "DOMAIN_WORDS", "METHODS", "MISSING", "RATING_HEADER", "REASON_HEADER",
    "Ablation", "Method", "OneShot", "ParsedAnswer", "PromptBuilder", "PromptOptions", "PromptTooLongError",
    "available_versions", "budget_lines", "choose_one_shot", "explanation_grammar", "parse_answer",
    "parse_explanation", "rating_continuation", "rating_grammar", "rating_regex", "scrub_explanation", "validate_gbnf",
]
