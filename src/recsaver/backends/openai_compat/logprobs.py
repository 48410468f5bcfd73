"""P(1..5) from the top logprobs of the generated tokens: `rating_probs` over HTTP."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ...prompts.rating import DIGITS
from ...prompts.rating import RATING_HEADER as _HEADER_LINE

RATING_HEADER = _HEADER_LINE.strip()  # searched for in the returned text, whatever whitespace follows it
TOP_LOGPROBS = 20


def rating_from_logprobs(tokens: Sequence[tuple[str, Sequence[tuple[str, float]]]]
                         ) -> tuple[tuple[float, ...] | None, float | None]:
    """P(1..5) at the token after the last rating header.

    `tokens` is the generated text as (token, [(alternative, logprob), ...]).
    Whitespace between the header and the answer is skipped; a token that
    merges the header with the answer gives no clean distribution (None).
    """
    text = "".join(tok for tok, _ in tokens)
    cut = text.rfind(RATING_HEADER)
    if cut < 0:
        return None, None
    end = cut + len(RATING_HEADER)
    pos = 0
    for tok, alternatives in tokens:
        start, pos = pos, pos + len(tok)
        if pos <= end:
            continue
        rest = tok[max(0, end - start):]
        if not rest.strip():
            continue  # the newline after the header
        if start < end:
            return None, None
        mass = dict.fromkeys(DIGITS, 0.0)
        for alt, logprob in alternatives:
            digit = (alt or "").strip()
            if digit in mass and logprob is not None and math.isfinite(logprob):
                mass[digit] += math.exp(logprob)
        total = sum(mass.values())
        if total <= 0.0:
            return None, None
        return tuple(mass[d] / total for d in DIGITS), total
    return None, None


def _chat_logprob_tokens(logprobs: Any) -> list[tuple[str, list[tuple[str, float]]]]:
    """Chat format: {"content": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]}."""
    content = (logprobs or {}).get("content") or []
    return [(str(t.get("token") or ""), [(str(a.get("token") or ""), a.get("logprob"))
                                         for a in (t.get("top_logprobs") or [])]) for t in content]


def _completion_logprob_tokens(logprobs: Any) -> list[tuple[str, list[tuple[str, float]]]]:
    """Legacy completions format: {"tokens": [...], "top_logprobs": [{token: logprob}, ...]}."""
    logprobs = logprobs or {}
    tokens = logprobs.get("tokens") or []
    tops = logprobs.get("top_logprobs") or []
    out = []
    for i, tok in enumerate(tokens):
        top = tops[i] if i < len(tops) and tops[i] else {}
        out.append((str(tok or ""), list(top.items())))
    return out
