"""Reading model answers back: reasoning text, a 1-5 rating, and whether the exact format held.

The exact formats are the ones `PromptBuilder.answer` writes:
    cot:    "### Reason ###\\n<reasoning>\\n\\n### Rating ###\\n<1-5>"
    direct: "### Rating ###\\n<1-5>"
Small models deviate, so the lenient reading accepts headers in another case or
without '#'s ("Rating:", "**Rating:** 4", "## RATING"), ratings written "4/5",
"4 out of 5", "4 stars", "a rating of 4", and a lone digit at the end.

Which number is the rating: the value right after the last rating header that
has one; without a usable header, the LAST rating-like mention in the text. A
number counts only as a whole token in 1..5 (or "4.0"): digits inside words or
other numbers, years ("2019"), prices ("$4.99"), decimals ("4.5"), ranges
("1-5") and counts ("4-pack", "4/10") never count. A bare number in prose
("they bought 3 items") is not a mention; it counts only right after a rating
header, alone on its line, or as the last token of the text.

Reasoning models write a `<think>...</think>` block before the answer: `split_thinking`
takes it out, and `parse_answer` / `parse_explanation` read only the rest, so the thinking
never becomes the reasoning, the explanation or the rating (it is kept as `thinking`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}

_EXACT = {
    "cot": re.compile(r"\A### Reason ###[ \t]*\n(?P<reason>.*?)\n[ \t]*### Rating ###[ \t]*\n[ \t]*(?P<rating>[1-5])\Z",
                      re.S),
    "direct": re.compile(r"\A### Rating ###[ \t]*\n[ \t]*(?P<rating>[1-5])\Z"),
}

# A header line: decoration, optional adjectives, the header word, optional "(1-5)", decoration, ':'.
_HEADER = re.compile(
    r"^[ \t]*(?:[#*_>\-]+[ \t]*)*"
    r"(?:(?:final|predicted|overall|my|estimated|expected|numerical|new)[ \t]+){0,2}"
    r"(?P<kind>rating|reasoning|reason|explanation|rationale)"
    r"(?:[ \t]*\([^)\n]{0,20}\))?"
    r"[ \t]*(?:[#*_]+[ \t]*)*(?P<colon>[:=])?[ \t]*(?:[#*_]+[ \t]*)*"
    r"(?P<rest>[^\n]*)$",
    re.I | re.M,
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*|\b(?:one|two|three|four|five)\b", re.I)
_VALUE_START = re.compile(r"[\s*_#:=>\-]*")
_STARS_AFTER = re.compile(r"[ \t]*-?[ \t]*stars?\b", re.I)
_OUT_OF_AFTER = re.compile(r"[ \t]*(?:/|out[ \t]+of)[ \t]*(?:5|five)\b(?![/.,]\d)", re.I)
_SCALE_BEFORE = re.compile(r"out[ \t]+of[ \t]*$", re.I)
_FILLER = (r"(?:of|is|was|would|will|should|could|be|it|this|that|the|a|an|as|at|to|new|product|item|video|movie|"
           r"show|around|about|approximately|likely|probably|predicted|final|my|i|i'd|i'll|user|user's|given|"
           r"score|rating|with|solid|perhaps|maybe|strong|them|her|him)")
_RATED_BEFORE = re.compile(
    r"\b(?:rating|rate|rates|rated|score|scored|give|gives|giving|gave|predict|predicts|prediction)\b"
    rf"(?:[ \t]*(?:[:=\-–]|\*+|_+|{_FILLER}\b))*[ \t]*$",
    re.I,
)
_LINE_DECOR = " \t*_#>`.!"
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)


def split_thinking(text: str) -> tuple[str | None, str]:
    """(the `<think>` blocks' text or None, the rest, stripped): reasoning models' thinking is not the answer.

    An empty block (`<think>\n\n</think>`, thinking switched off) gives None; an answer cut off
    inside its block is all thinking and no answer.
    """
    if "think>" not in text.lower():
        return None, text.strip()
    blocks = [b.strip() for b in _THINK.findall(text)]
    rest = _THINK.sub("", text)
    if "</think>" in rest.lower() and not blocks:  # an opening tag the server dropped: all before it is thinking
        cut = rest.lower().rindex("</think>")
        blocks, rest = [rest[:cut].strip()], rest[cut + len("</think>"):]
    elif "<think>" in rest.lower() and not blocks:  # cut off while thinking: no answer yet
        cut = rest.lower().index("<think>")
        blocks, rest = [rest[cut + len("<think>"):].strip()], rest[:cut]
    blocks = [b for b in blocks if b]
    return ("\n\n".join(blocks) if blocks else None), rest.strip()


@dataclass(frozen=True)
class ParsedAnswer:
    reasoning: str | None
    rating: int | None
    format_ok: bool
    thinking: str | None = None  # a reasoning model's `<think>` block, kept apart from the reasoning


@dataclass(frozen=True)
class _Header:
    start: int  # start of the header line
    body: int  # where the text under the header begins (the rest of the header line)
    kind: str  # "rating" or "reason"


@dataclass(frozen=True)
class _Token:
    start: int
    end: int
    value: int
    word: bool


def _token(text: str, m: re.Match[str]) -> _Token | None:
    """A number token that could be a rating, or None for years, prices, decimals, ranges, counts."""
    raw, start, end = m.group(), m.start(), m.end()
    word = raw[0].isalpha()
    if word:
        value = _WORDS[raw.lower()]
    else:
        if raw.endswith(".0"):
            raw = raw[:-2]
        if not raw.isdigit() or len(raw) != 1:
            return None
        value = int(raw)
        if not 1 <= value <= 5:
            return None
    before = text[start - 1] if start else ""
    after = text[end:end + 2]
    if before and (before.isalnum() or before in "$£€¥#/.,+"):
        return None
    if before == "-" and start >= 2 and text[start - 2].isdigit():
        return None  # the end of a range, "1-5"
    if after[:1] and (after[:1].isalnum() or after[:1] in "%$"):
        return None
    if after[:1] == "-" and (after[1:2].isdigit() or (after[1:2].isalpha() and not _STARS_AFTER.match(text, end))):
        return None  # "4-5", "4-pack"; but "4-star" is a mention
    if after[:1] == "/" and not _OUT_OF_AFTER.match(text, end):
        return None  # "4/10", "4/5/2019"
    if _SCALE_BEFORE.search(text, max(0, start - 12), start):
        return None  # the scale, not the rating: "out of 5"
    return _Token(start, end, value, word)


def _tokens(text: str, start: int = 0, end: int | None = None) -> list[_Token]:
    end = len(text) if end is None else end
    found = (_token(text, m) for m in _NUMBER.finditer(text, start, end))
    return [t for t in found if t is not None]


def _line_bounds(text: str, pos: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return start, len(text) if end < 0 else end


def _is_mention(text: str, tok: _Token, last: bool) -> bool:
    """Rating-like: "4 stars", "4/5", "4 out of 5", "a rating of 4", a lone digit line, a final digit."""
    if _STARS_AFTER.match(text, tok.end) or _OUT_OF_AFTER.match(text, tok.end):
        return True
    if _RATED_BEFORE.search(text[max(0, tok.start - 60):tok.start]):
        return True
    if tok.word:
        return False
    line_start, line_end = _line_bounds(text, tok.start)
    if text[line_start:tok.start].strip(_LINE_DECOR) == "" and text[tok.end:line_end].strip(_LINE_DECOR) == "":
        return True
    at_end = text[tok.end:].strip(_LINE_DECOR + "\n)") == ""
    return last and at_end and text[tok.start - 1:tok.start] in (" ", "\t", ":", "(", "*", "_")


def _headers(text: str) -> list[_Header]:
    out = []
    for m in _HEADER.finditer(text):
        rest = m["rest"]
        kind = "rating" if m["kind"].lower() == "rating" else "reason"
        if m["colon"] or not rest.strip():
            out.append(_Header(m.start(), m.start("rest"), kind))
        elif (kind == "rating" and _NUMBER.match(rest)
              and (num := _NUMBER.match(text, m.start("rest"))) and _token(text, num)):
            out.append(_Header(m.start(), m.start("rest"), kind))
    return out


def has_rating_header(text: str) -> bool:
    """Whether some line of `text` reads as a rating header (so it would confuse parsing)."""
    return any(h.kind == "rating" for h in _headers(text))


def _header_value(text: str, start: int, end: int) -> _Token | None:
    """The rating under a header: the value that opens the section, else its first rating mention
    or number."""
    opening = _VALUE_START.match(text, start)
    assert opening is not None  # the pattern is all-optional, so it always matches
    first = opening.end()
    m = _NUMBER.match(text, first, end)
    tok = _token(text, m) if m else None
    if tok is not None:
        return tok
    tokens = _tokens(text, start, end)
    mentions = [t for t in tokens if _is_mention(text, t, last=False)]
    if mentions:
        return mentions[0]
    digits = [t for t in tokens if not t.word]
    return digits[0] if digits else None


def _clean(text: str) -> str | None:
    text = text.strip()
    return text or None


def _section_end(headers: list[_Header], after: int, default: int) -> int:
    return next((h.start for h in headers if h.start > after), default)


def parse_answer(text: str | None, method: str = "cot") -> ParsedAnswer:
    """Reasoning, rating (1-5 or None), whether the exact format of `method` held, and the thinking.

    A `<think>` block is taken out first (`split_thinking`) and the rest parsed as any answer.
    """
    if method not in _EXACT:
        raise ValueError(f"method must be 'cot' or 'direct', got {method!r}")
    if text is None:
        return ParsedAnswer(None, None, False)
    thinking, text = split_thinking(text)
    parsed = _parse_answer(text, method)
    return replace(parsed, thinking=thinking) if thinking is not None else parsed


def _parse_answer(text: str, method: str) -> ParsedAnswer:
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return ParsedAnswer(None, None, False)

    exact = _EXACT[method].match(text)
    if exact:
        reason = _clean(exact.groupdict().get("reason") or "")
        if method == "direct" or (reason and not has_rating_header(reason)):
            return ParsedAnswer(reason, int(exact["rating"]), True)

    headers = _headers(text)
    rating_tok: _Token | None = None
    rating_header: _Header | None = None
    for h in reversed([h for h in headers if h.kind == "rating"]):
        tok = _header_value(text, h.body, _section_end(headers, h.start, len(text)))
        if tok is not None:
            rating_tok, rating_header = tok, h
            break
    if rating_tok is None:
        tokens = _tokens(text)
        mentions = [t for i, t in enumerate(tokens) if _is_mention(text, t, last=i == len(tokens) - 1)]
        rating_tok = mentions[-1] if mentions else None
    rating = rating_tok.value if rating_tok else None
    return ParsedAnswer(_reasoning(text, headers, rating_header, rating_tok), rating, False)


def _reasoning(text: str, headers: list[_Header], rating_header: _Header | None,
               rating_tok: _Token | None) -> str | None:
    reasons = [h for h in headers if h.kind == "reason"]
    if reasons:
        before = [h for h in reasons if rating_header is None or h.start < rating_header.start]
        reason = before[-1] if before else reasons[0]
        end = _section_end([h for h in headers if h.kind == "rating"], reason.start, len(text))
        return _clean(text[reason.body:end])
    if rating_header is not None:
        assert rating_tok is not None
        before_header = _clean(text[:rating_header.start])
        if before_header:
            return before_header
        _, line_end = _line_bounds(text, rating_tok.end)
        return _clean(text[line_end:])
    if rating_tok is not None:
        line_start, line_end = _line_bounds(text, rating_tok.start)
        if text[line_start:line_end].strip(_LINE_DECOR).lower() == text[rating_tok.start:rating_tok.end].lower():
            return _clean(text[:line_start] + text[line_end:])  # a lone rating line is not reasoning
    return _clean(text)


def parse_explanation(text: str | None) -> str | None:
    """The explanation of a Rec-SAVER step-1 answer: its Reason section, or the whole text."""
    if text is None:
        return None
    text = split_thinking(text)[1].replace("\r\n", "\n").strip()
    headers = _headers(text)
    reasons = [h for h in headers if h.kind == "reason"]
    if reasons:
        start = reasons[0].body
        return _clean(text[start:_section_end(headers, reasons[0].start, len(text))])
    ratings = [h for h in headers if h.kind == "rating"]
    return _clean(text[:ratings[0].start] if ratings else text)


def scrub_explanation(text: str | None) -> str:
    """Drop the sentences that could leak the gold rating (paper Section 3.1), with the default patterns.

    `recsaver.prompts.leakage.Scrubber` is the configurable form that also logs what it removed.
    """
    from .leakage import Scrubber

    return Scrubber().scrub(text).text
