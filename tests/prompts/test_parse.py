"""parse_answer: the exact format, the usual deviations of small models, and the traps."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from recsaver.prompts import PromptBuilder, PromptOptions, parse_answer, parse_explanation, scrub_explanation
from recsaver.prompts.parse import has_rating_header

# (text, method, rating, format_ok, reasoning); reasoning ... = do not check
CASES = [
    # the exact formats
    ("### Reason ###\nThe user likes scrubs.\n\n### Rating ###\n4", "cot", 4, True, "The user likes scrubs."),
    ("### Reason ###\nLine one.\nLine two.\n### Rating ###\n2", "cot", 2, True, "Line one.\nLine two."),
    ("  ### Rating ###\n5\n", "direct", 5, True, None),
    ("### Rating ###\n3", "cot", 3, False, None),  # direct format where cot was asked
    ("### Reason ###\nok\n\n### Rating ###\n1", "direct", 1, False, "ok"),  # cot format where direct was asked
    # headers in another case, without '#'s, in markdown
    ("### reason ###\nok\n### rating ###\n1", "cot", 1, False, "ok"),
    ("## RATING\n2", "direct", 2, False, None),
    ("Reasoning: nice stuff.\nRating: 2", "cot", 2, False, "nice stuff."),
    ("Rating: 4", "direct", 4, False, None),
    ("**Rating:** 4", "direct", 4, False, None),
    ("**Rating**: 5", "direct", 5, False, None),
    ("Final rating: four", "direct", 4, False, None),
    ("Rating (1-5): 3", "direct", 3, False, None),
    ("### Rating ###\n**4**", "direct", 4, False, None),
    ("### Rating ###\n4.0", "direct", 4, False, None),
    ("Reason: the user likes it\nRating: 5/5", "cot", 5, False, "the user likes it"),
    # the value in other forms, without a header
    ("4/5", "direct", 4, False, ...),
    ("I think 4 out of 5.", "cot", 4, False, "I think 4 out of 5."),
    ("I rate it 4 out of 5 stars", "cot", 4, False, ...),
    ("I would give it 4 stars.", "cot", 4, False, ...),
    ("a five-star product", "cot", 5, False, ...),
    ("The user will probably rate this product a 2.", "cot", 2, False, ...),
    ("On a scale of 1-5, I would give 4.", "cot", 4, False, ...),
    # reasoning without header, then a lone digit
    ("The user likes cheap scrubs.\n4", "cot", 4, False, "The user likes cheap scrubs."),
    ("The user likes cheap scrubs.\n\n**3**", "cot", 3, False, "The user likes cheap scrubs."),
    ("The user likes them. 3", "cot", 3, False, "The user likes them. 3"),
    ("The user likes them.\n\n### Rating ###\n5", "cot", 5, False, "The user likes them."),
    # extra text after the rating
    ("### Reason ###\nok\n\n### Rating ###\n3 (the user is picky)", "cot", 3, False, "ok"),
    ("### Rating ###\n5\n\nI hope this helps!", "direct", 5, False, "I hope this helps!"),
    # several candidates: the header wins, else the last mention
    ("Rating: 3\n\nOn reflection I would rate it 5 stars.", "cot", 3, False, ...),
    ("The user gave 5 stars to the scrub, so the new one gets 3 stars.", "cot", 3, False, ...),
    ("### Reason ###\nThey rated a similar cream 5 stars.\n\n### Rating ###\n2", "cot", 2, True, ...),
    ("### Rating ###\nThe rating would be 2 because of 4 bad reviews", "direct", 2, False, ...),
    ("### Reason ###\nx\n\n### Rating ###\n4\n### Rating ###\n5", "cot", 5, False, "x"),
    # traps: years, prices, counts, scales, ranges, dates, decimals
    ("Released in 2019 for $4.99, a 4-pack.", "cot", None, False, "Released in 2019 for $4.99, a 4-pack."),
    ("The user bought 3 similar products in 2019.", "cot", None, False, ...),
    ("The user's rating history has 5 items and they liked it", "cot", None, False, ...),
    ("Ratings: 5, 4, 4. I think the user will like it.", "cot", None, False, ...),
    ("Rating: 4/10", "direct", None, False, "Rating: 4/10"),
    ("Rating: 2019", "direct", None, False, "Rating: 2019"),
    ("### Rating ###\n4.5", "direct", None, False, "### Rating ###\n4.5"),
    ("Bought on 4/5/2019.", "cot", None, False, ...),
    ("It costs $4.99 and comes in a 3-pack, 5ml each.", "cot", None, False, ...),
    # unparseable
    ("no idea", "cot", None, False, "no idea"),
    ("   \n ", "cot", None, False, None),
    ("", "direct", None, False, None),
    (None, "cot", None, False, None),
]


@pytest.mark.parametrize(("text", "method", "rating", "format_ok", "reasoning"), CASES)
def test_deviations(text, method, rating, format_ok, reasoning) -> None:
    parsed = parse_answer(text, method)
    assert parsed.rating == rating
    assert parsed.format_ok is format_ok
    if reasoning is not ...:
        assert parsed.reasoning == reasoning


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 15
    assert sum(c[2] is None for c in CASES) >= 5


def test_unknown_method() -> None:
    with pytest.raises(ValueError):
        parse_answer("### Rating ###\n4", "tot")


_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), min_size=1, max_size=300)


@settings(max_examples=300, deadline=None)
@given(reasoning=_TEXT, rating=st.integers(1, 5))
def test_any_reasoning_round_trips(reasoning: str, rating: int) -> None:
    # A `<think>` tag (any case) marks a reasoning model's thinking, which split_thinking takes out by design
    # (tests/prompts/test_thinking.py): such a text is not plain reasoning, as a rating header is not.
    assume(reasoning.strip() and not has_rating_header(reasoning.strip()) and "think>" not in reasoning.lower())
    b = PromptBuilder("movies")
    parsed = parse_answer(b.answer(reasoning, rating), "cot")
    assert parsed == (parsed.__class__(reasoning.strip(), rating, True))


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200), method=st.sampled_from(["cot", "direct"]))
def test_never_raises_and_rating_in_range(text: str, method: str) -> None:
    parsed = parse_answer(text, method)
    assert parsed.rating is None or 1 <= parsed.rating <= 5
    assert not parsed.format_ok or parsed.rating is not None


def test_direct_builder_parses_its_own_answers() -> None:
    b = PromptBuilder("beauty", PromptOptions(method="direct"))
    assert b.parse(b.answer(None, 2)) == parse_answer("### Rating ###\n2", "direct")


def test_parse_explanation() -> None:
    assert parse_explanation("### Reason ###\nThe user likes it.\nA lot.") == "The user likes it.\nA lot."
    assert parse_explanation("Reason: fine.\n\n### Rating ###\n4") == "fine."
    assert parse_explanation("Just text.") == "Just text."
    assert parse_explanation("Just text.\nRating: 4") == "Just text."
    assert parse_explanation(None) is None and parse_explanation("  ") is None


def test_scrub_explanation_removes_leaking_sentences() -> None:
    text = ("The user loves scrubs. They gave it a rating of 5. It has 5 stars! Great value.\n\n"
            "The scores are high. Nice scent. I'd say 4 out of 5. Rated it a 4 overall.")
    assert scrub_explanation(text) == "The user loves scrubs. Great value.\n\nNice scent."
    assert scrub_explanation("Costs $4.99. Lasts long.") == "Costs $4.99. Lasts long."
    assert scrub_explanation("") == "" and scrub_explanation(None) == ""
