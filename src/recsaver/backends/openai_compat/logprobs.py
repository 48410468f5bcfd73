"""Candidate probabilities from the top logprobs a server returns: `rating_probs` and probes over HTTP."""

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
        found = candidate_distribution(alternatives, DIGITS)
        return found if found is not None else (None, None)
    return None, None


def candidate_distribution(alternatives: Sequence[tuple[str, float | None]], candidates: Sequence[str]
                           ) -> tuple[tuple[float, ...], float] | None:
    """(probs normalized over `candidates`, their total mass) from one position's top logprobs.

    An alternative counts for the candidate it equals, or else for the candidate it equals once
    whitespace is stripped (servers report " 3" or "3" alike); alternatives outside the top list
    count 0, so the mass is a lower bound. None when no candidate is among them.
    """
    mass = [0.0] * len(candidates)
    exact = {c: k for k, c in reversed(list(enumerate(candidates)))}
    stripped = {c.strip(): k for k, c in reversed(list(enumerate(candidates)))}
    for alt, logprob in alternatives:
        text = alt or ""
        k = exact.get(text, stripped.get(text.strip()))
        if k is not None and logprob is not None and math.isfinite(logprob):
            mass[k] += math.exp(logprob)
    total = sum(mass)
    if total <= 0.0:
        return None
    return tuple(m / total for m in mass), total


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
