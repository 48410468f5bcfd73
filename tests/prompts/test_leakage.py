"""The leakage scrub removes rating-revealing sentences only, and logs each one."""

from __future__ import annotations

import pytest

from recsaver.prompts.leakage import Scrubber


@pytest.mark.parametrize("sentence", [
    "The user gave it a rating of 5.",
    "That is why it earns five stars.",
    "Its scores are consistently high.",
    "Overall it deserves 5/5.",
    "I would say 4 out of 5.",
    "The user rated it 4 because of the scent.",
    "They gave it a 2 after it broke.",
    "A five-star experience for this user.",
    "This is a 3-star product for them.",
    "Their rating is 2 for this one.",
])
def test_leaking_sentences_are_removed(sentence: str) -> None:
    text = f"The user likes fragrance-free creams. {sentence} They dislike strong perfumes."
    result = Scrubber().scrub(text)
    assert result.removed == (sentence,)
    assert result.text == "The user likes fragrance-free creams. They dislike strong perfumes."


@pytest.mark.parametrize("sentence", [
    "The user bought 3 serums in 2019.",
    "It costs $4.99 and comes as a 4-pack.",
    "They rated sunscreens highly in the past.",
    "The star of the movie is Tom Hanks.",  # 'star' (singular, a person) is not 'stars'... but is matched
])
def test_harmless_sentences_survive(sentence: str) -> None:
    result = Scrubber().scrub(sentence)
    if "star of the movie" in sentence:
        # The paper's plain word list also catches this false positive; it is logged, so it can be audited.
        assert result.removed == (sentence,)
    else:
        assert result.text == sentence and result.removed == ()


def test_paragraphs_survive_and_patterns_are_configurable() -> None:
    text = "First point.\n\nSecond point mentions scores.\nThird point."
    result = Scrubber().scrub(text)
    assert result.text == "First point.\n\n\nThird point.".replace("\n\n\n", "\n\n")
    custom = Scrubber(patterns=(r"\bthird\b",)).scrub(text)
    assert custom.removed == ("Third point.",) and "scores" in custom.text


def test_bad_pattern_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not a valid regular expression"):
        Scrubber(patterns=("(unclosed",))
