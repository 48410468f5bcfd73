"""The rating header and the text after which a rating is read: the one owner of that text.

Every engine reads P(1..5) the same way: the answer is cut at its last rating header (or, with none,
the whole answer and a blank line is kept) and the header is appended; the next token's distribution
over the five digits is the rating distribution (paper Section 4.3). Backends take the header, the
digits and that continuation from here (`rating_probe`); they hold no prompt text of their own.
"""

from __future__ import annotations

from ..backends.base import GenerationRequest, ProbeRequest

RATING_HEADER = "### Rating ###\n"
DIGITS = ("1", "2", "3", "4", "5")


def rating_continuation(completion: str) -> str:
    """The text appended to the prompt before reading P(1..5): the answer cut at its last
    rating header (or the whole answer and a blank line when it has none) + the header."""
    cut = completion.rfind(RATING_HEADER.strip())
    head = completion[:cut] if cut >= 0 else completion.rstrip() + "\n\n"
    if cut < 0 and not completion.strip():
        head = ""
    return head + RATING_HEADER


def rating_probe(request: GenerationRequest, completion: str) -> ProbeRequest:
    """The probe that reads P(1..5) after `completion`, the answer to `request`: the request's
    prompt + `rating_continuation(completion)`, candidates `DIGITS`. Every backend's
    `generate(rating_probs=True)` reads its rating distribution through this probe."""
    return ProbeRequest.from_request(request, rating_continuation(completion), DIGITS)
