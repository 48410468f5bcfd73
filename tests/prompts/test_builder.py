"""PromptBuilder on real prepared examples: Table 12 wording, ablations, one-shot, answers, fit."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from recsaver.data.records import Example, HistoryEntry, Item, Target
from recsaver.prompts import (
    ABLATIONS,
    MISSING,
    OneShot,
    PromptBuilder,
    PromptOptions,
    PromptTooLongError,
    choose_one_shot,
    parse_answer,
)
from recsaver.prompts.templates import TEMPLATE_FIELDS, available_versions, load_template

PREAMBLE = ("Here is information about a user and a new {item} being recommended to the user. For the user, we have "
            "the user's past item information history and the user's corresponding ratings. User ratings range from "
            "1 to 5, where 1 is the lowest and 5 is the highest. For the new item being recommended, we have the "
            "item information.")
TASK_COT = """Given the user's past {action} history and the new item information, what information can you infer \
about the user's preferences and how they will rate the new {item}?

Your reasoning explanation should be based on any commonalities in the user history items and inferred user tastes \
or preferences.

After your reasoning, predict a numerical rating.

Please follow the format below:

### Reason ###
Write your reasoning explanation here. You can have line breaks.

### Rating ###
Give a single numerical rating, e.g. 1"""
WORDS = {
    "beauty": {"item": "product", "Item": "Product", "action": "purchase"},
    "movies": {"item": "video (movies and tv)", "Item": "Video (Movies and TV)", "action": "watch"},
}
REASONING = "The user loves gentle scrubs and\nwrites long reviews.\n\nThe new item is similar, so a high rating."


def lines_of(text: str) -> list[str]:
    return text.split("\n")


def without_prefixes(text: str, prefixes: tuple[str, ...]) -> list[str]:
    """The text's lines without those starting with any prefix, joined blank lines collapsed."""
    kept = [line for line in lines_of(text) if not line.startswith(prefixes)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).split("\n")


def sample(examples: list[Example], n: int = 40) -> list[Example]:
    return examples[:: max(1, len(examples) // n)]


# ---- a hand-built example: the whole rendering pinned -------------------------------------------

def tiny_example(domain: str = "beauty") -> Example:
    full = Item(title="Apricot Scrub", brand="St. Ives", categories=("Skin Care", "Face"),
                description="A gentle scrub.", price=4.5)
    bare = Item(title=None, brand=None, categories=(), description=None, price=None)
    history = (
        HistoryEntry("A1", 1, 5, "Great scent", "I love it.", full),
        HistoryEntry("A2", 2, 2, "Meh!", None, bare),
        HistoryEntry("A3", 3, 4, None, "Works  fine\nfor me.", bare),
    )
    target = Target("T1", 4, Item(title="Rose Mask", brand="Glow", categories=("Masks",), description=None,
                                   price=1234.5))
    return Example("ex1", domain, "u1", 4, target, history)


def test_full_rendering_is_pinned() -> None:
    text = PromptBuilder("beauty").rating_prompt(tiny_example())
    expected = PREAMBLE.format(item="product") + """

### Past User History: ###

Product Title: Apricot Scrub
Brand: St. Ives
Categories: Skin Care, Face
Description: A gentle scrub.
Item Price: $4.50
User Rating: 5
User Review: Great scent. I love it.

Product Title: N/A
Brand: N/A
Categories: N/A
Description: N/A
Item Price: N/A
User Rating: 2
User Review: Meh!

Product Title: N/A
Brand: N/A
Categories: N/A
Description: N/A
Item Price: N/A
User Rating: 4
User Review: Works fine for me.

### New Item Information: ###

New Product
Product Title: Rose Mask
Brand: Glow
Categories: Masks
Description: N/A
Item Price: $1,234.50

#####

""" + TASK_COT.format(action="purchase", item="product")
    assert text == expected


def test_templates_load_and_share_the_prefix() -> None:
    assert "v1" in available_versions()
    for name in TEMPLATE_FIELDS:
        load_template(name, "v1")
    ex = tiny_example()
    b = PromptBuilder("beauty")
    head = b.rating_prompt(ex).split("#####")[0]
    assert b.explanation_messages(ex, 4)[0]["content"].startswith(head)
    assert b.verification_messages(ex, "Likes scrubs.")[0]["content"].startswith(head)
    direct = PromptBuilder("beauty", PromptOptions(method="direct")).rating_prompt(ex)
    assert direct.startswith(head)


# ---- real examples ---------------------------------------------------------------------------------

def test_table12_wording_with_domain_words(prompt_data, domain: str) -> None:
    words = WORDS[domain]
    other = WORDS["movies" if domain == "beauty" else "beauty"]
    b = PromptBuilder(domain)
    for ex in sample(prompt_data[domain]["test"]):
        text = b.rating_prompt(ex)
        assert text.startswith(PREAMBLE.format(item=words["item"]) + "\n\n### Past User History: ###\n\n")
        assert text.endswith("\n\n#####\n\n" + TASK_COT.format(**words))
        assert f"### New Item Information: ###\n\nNew {words['Item']}\n{words['Item']} Title: " in text
        assert text.count(f"{words['Item']} Title: ") == len(ex.history) + 1
        assert f"{other['Item']} Title:" not in text
        for field in ("Brand: ", "Categories: ", "Description: ", "Item Price: "):
            assert text.count("\n" + field) == len(ex.history) + 1
        assert text.count("\nUser Rating: ") == text.count("\nUser Review: ") == len(ex.history)
        ratings = re.findall(r"^User Rating: (\d)$", text, re.M)
        assert ratings == [str(h.rating) for h in ex.history]  # oldest first, as in the data


def test_missing_fields_print_na(prompt_data, domain: str) -> None:
    b = PromptBuilder(domain)
    examples = sample(prompt_data[domain]["test"])
    seen_missing = 0
    for ex in examples:
        text = b.rating_prompt(ex)
        items = [h.item for h in ex.history] + [ex.target.item]
        missing = sum(i.description is None for i in items)
        assert text.count(f"\nDescription: {MISSING}\n") == missing
        assert text.count(f"\nItem Price: {MISSING}") == sum(i.price is None for i in items)
        seen_missing += missing
        for i in items:
            if i.price is not None:
                assert f"Item Price: ${i.price:,.2f}" in text
    assert seen_missing, "the real data should have some missing descriptions"


def test_reviews_joined_title_then_text(prompt_data) -> None:
    b = PromptBuilder("beauty")
    ex = prompt_data["beauty"]["test"][0]
    text = b.rating_prompt(ex)
    h = ex.history[0]
    assert h.review_title and h.review_text
    sep = " " if h.review_title.rstrip()[-1] in ".!?…" else ". "
    assert f"User Review: {h.review_title}{sep}{h.review_text[:40]}" in text


def test_no_review_removes_exactly_the_reviews(prompt_data, domain: str) -> None:
    full, ablated = PromptBuilder(domain), PromptBuilder(domain, PromptOptions(ablation="no-review"))
    for ex in sample(prompt_data[domain]["test"]):
        text = ablated.rating_prompt(ex)
        assert "User Review:" not in text
        assert text.count("\nUser Rating: ") == len(ex.history)
        for h in ex.history:
            if h.review_text and len(h.review_text) > 25:
                assert h.review_text not in text
        assert lines_of(text) == without_prefixes(full.rating_prompt(ex), ("User Review:",))


def test_no_review_no_rating_removes_reviews_and_ratings(prompt_data, domain: str) -> None:
    full = PromptBuilder(domain)
    ablated = PromptBuilder(domain, PromptOptions(ablation="no-review-no-rating"))
    for ex in sample(prompt_data[domain]["test"]):
        text = ablated.rating_prompt(ex)
        assert "User Review:" not in text and "User Rating:" not in text
        assert lines_of(text) == without_prefixes(full.rating_prompt(ex), ("User Review:", "User Rating:"))


def test_no_description_removes_descriptions_everywhere(prompt_data, domain: str) -> None:
    full = PromptBuilder(domain)
    ablated = PromptBuilder(domain, PromptOptions(ablation="no-description"))
    checked = 0
    for ex in sample(prompt_data[domain]["test"]):
        text = ablated.rating_prompt(ex)
        assert "Description:" not in text
        for item in [h.item for h in ex.history] + [ex.target.item]:
            other = f"{item.title} {item.brand}"
            if item.description and len(item.description) > 40 and item.description not in other:
                assert item.description not in text
                checked += 1
        assert lines_of(text) == without_prefixes(full.rating_prompt(ex), ("Description:",))
        assert text.count("\nUser Review: ") == len(ex.history)
    assert checked


def test_direct_drops_the_reasoning_parts(prompt_data, domain: str) -> None:
    cot, direct = PromptBuilder(domain), PromptBuilder(domain, PromptOptions(method="direct"))
    words = WORDS[domain]
    for ex in sample(prompt_data[domain]["test"], 10):
        text = direct.rating_prompt(ex)
        assert "### Reason ###" not in text and "reasoning" not in text.split("#####")[-1]
        assert "After your reasoning" not in text
        assert text.endswith(
            f"#####\n\nGiven the user's past {words['action']} history and the new item information, what "
            f"information can you infer about the user's preferences and how they will rate the new "
            f"{words['item']}?\n\nPlease follow the format below:\n\n### Rating ###\n"
            "Give a single numerical rating, e.g. 1")
        assert text.split("#####")[0] == cot.rating_prompt(ex).split("#####")[0]


def test_one_shot_shows_another_users_worked_example(prompt_data, domain: str) -> None:
    train, test = prompt_data[domain]["train"], prompt_data[domain]["test"]
    test_users = {e.user_id for e in test}
    shot = choose_one_shot(train, exclude_users=test_users, seed=0)
    assert shot.user_id not in test_users
    for method in ("cot", "direct"):
        b = PromptBuilder(domain, PromptOptions(method=method, ablation="one-shot"), OneShot(shot, REASONING))
        plain = PromptBuilder(domain, PromptOptions(method=method))
        for ex in sample(test, 10):
            text = b.rating_prompt(ex)
            head, task = text.split("### Now your task ###\n\n")
            assert head.count("### Example ###") == 1 and "### Example ###" not in task
            example_part = head.split("### Example ###")[1]
            for h in shot.history:
                assert f"User Rating: {h.rating}\n" in example_part
                if h.item.title:
                    assert h.item.title in example_part
                if h.review_text:
                    assert h.review_text[:60] in example_part
            answer = b.answer(REASONING, shot.rating)
            assert example_part.rstrip().endswith(answer)
            assert parse_answer(answer, method).rating == shot.rating
            if method == "direct":
                assert "### Reason ###" not in text
            # the task is the plain prompt's history, item and task, after the example
            assert task == plain.rating_prompt(ex).split("\n\n", 1)[1]
            for h in ex.history:
                if h.review_text and len(h.review_text) > 30:
                    assert h.review_text not in head


def test_one_shot_needs_a_shot_from_another_user(prompt_data) -> None:
    test = prompt_data["beauty"]["test"]
    with pytest.raises(ValueError, match="OneShot"):
        PromptBuilder("beauty", PromptOptions(ablation="one-shot"))
    with pytest.raises(ValueError, match="ablation"):
        PromptBuilder("beauty", one_shot=OneShot(test[1], REASONING))
    same_user = PromptBuilder("beauty", PromptOptions(ablation="one-shot"), OneShot(test[0], REASONING))
    with pytest.raises(ValueError, match="same user"):
        same_user.rating_prompt(test[0])
    movie = prompt_data["movies"]["train"][0]
    with pytest.raises(ValueError, match="domain"):
        PromptBuilder("beauty", PromptOptions(ablation="one-shot"), OneShot(movie, REASONING))


def test_choose_one_shot_is_deterministic_and_short(prompt_data, domain: str) -> None:
    train, test = prompt_data[domain]["train"], prompt_data[domain]["test"]
    excluded = {e.user_id for e in test} | {train[0].user_id}
    first = choose_one_shot(train, excluded, seed=3)
    assert first == choose_one_shot(list(reversed(train)), excluded, seed=3)
    assert first.user_id not in excluded
    assert len(first.history) == min(len(e.history) for e in train if e.user_id not in excluded)
    picks = {choose_one_shot(train, excluded, seed=s).example_id for s in range(10)}
    assert len(picks) > 1
    with pytest.raises(ValueError):
        choose_one_shot(train, {e.user_id for e in train}, seed=0)


@pytest.mark.parametrize("method", ["cot", "direct"])
def test_answers_round_trip_for_every_rating(method: str) -> None:
    b = PromptBuilder("beauty", PromptOptions(method=method))
    for rating in range(1, 6):
        text = b.answer(REASONING if method == "cot" else None, rating)
        parsed = parse_answer(text, method)
        assert parsed.format_ok and parsed.rating == rating
        assert b.parse(text) == parsed
        if method == "cot":
            assert text == f"### Reason ###\n{REASONING}\n\n### Rating ###\n{rating}"
            assert parsed.reasoning == REASONING
            assert text.startswith(b.answer_prefix(REASONING)) and b.answer_prefix(REASONING).endswith(
                b.rating_header())
        else:
            assert text == f"### Rating ###\n{rating}" and parsed.reasoning is None
        assert re.fullmatch(b.regex(), text)


def test_answer_rejects_what_would_not_parse_back() -> None:
    cot = PromptBuilder("beauty")
    for bad in (0, 6, 4.0, True, "4"):
        with pytest.raises(ValueError):
            cot.answer(REASONING, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        cot.answer("  ", 3)
    with pytest.raises(ValueError):
        cot.answer("Fine.\nRating: 5\nMore.", 3)


def test_training_row_matches_inference(prompt_data, domain: str) -> None:
    ex = prompt_data[domain]["train"][0]
    for method in ("cot", "direct"):
        b = PromptBuilder(domain, PromptOptions(method=method))
        row = b.training_row(ex, REASONING, ex.rating)
        assert row["messages"][:1] == b.messages(ex)
        assert row["messages"][1] == {"role": "assistant", "content": b.answer(REASONING, ex.rating)}
        assert row["prompt"] == b.rating_prompt(ex) and row["completion"] == row["messages"][1]["content"]
        assert parse_answer(row["completion"], method).rating == ex.rating


def test_rec_saver_prompts(prompt_data, domain: str) -> None:
    words = WORDS[domain]
    b = PromptBuilder(domain)
    ex = prompt_data[domain]["test"][0]
    explain = b.explanation_messages(ex, ex.rating)
    assert [m["role"] for m in explain] == ["user"]
    text = explain[0]["content"]
    assert f"The user rated the new {words['item']} {ex.rating} on the scale from 1 to 5." in text
    assert text.endswith("### Reason ###\nWrite your reasoning explanation here. You can have line breaks.")
    assert "### Rating ###" not in text
    with pytest.raises(ValueError):
        b.explanation_messages(ex, 7)

    explanation = ("The user enjoys light textures.\nThey gave it a rating of 5. It deserves 5 stars!\n\n"
                   "Price matters to them.")
    verify = b.verification_messages(ex, explanation)[0]["content"]
    assert "The user enjoys light textures." in verify and "Price matters to them." in verify
    assert "a rating of 5" not in verify and "5 stars" not in verify
    assert "The user rated" not in verify
    assert verify.endswith("### Rating ###\nGive a single numerical rating, e.g. 1")
    raw = b.verification_messages(ex, explanation, scrub=False)[0]["content"]
    assert "a rating of 5" in raw
    only_leaks = b.verification_messages(ex, "It has 5 stars.")[0]["content"]
    assert f"### Explanation: ###\n\n{MISSING}\n\n#####" in only_leaks


def test_explanation_variant_and_judge_prompts(prompt_data, domain: str) -> None:
    """Issue 18: the `meaning` variant says what the rating means; the judge sees item + explanation only."""
    words = WORDS[domain]
    b = PromptBuilder(domain)
    ex = prompt_data[domain]["test"][0]
    paper = b.explanation_messages(ex, 1)[0]["content"]
    assert b.explanation_messages(ex, 1, "paper")[0]["content"] == paper
    meaning = b.explanation_messages(ex, 1, "meaning")[0]["content"]
    assert meaning.split("#####")[0] == paper.split("#####")[0]  # the same history and item
    assert f"rated the new {words['item']} 1 on the scale from 1 to 5: the user strongly disliked it." in meaning
    assert "loved it" in b.explanation_messages(ex, 5, "meaning")[0]["content"]
    assert meaning.endswith("### Reason ###\nWrite your reasoning explanation here. You can have line breaks.")
    reasons = {r: b.explanation_messages(ex, r, "reasons")[0]["content"] for r in range(1, 6)}
    assert reasons[3].split("#####")[0] == paper.split("#####")[0]
    assert f"the user felt mixed about it.\n\nGiven the user's past {words['action']} history" in reasons[3]
    assert (f"the reasons behind that judgement: say both what the user would appreciate about this {words['item']}"
            " and what would disappoint them, and why neither outweighs the other.\n\n") in reasons[3]
    assert "small reservation" in reasons[4] and "small reservation" not in reasons[5]
    assert "${" not in "".join(reasons.values()) and len(set(reasons.values())) == 5
    with pytest.raises(ValueError, match="one of paper, meaning, reasons"):
        b.explanation_messages(ex, 1, "shouting")
    judge = b.judge_messages(ex, "They dislike strong scents.")[0]["content"]
    assert "They dislike strong scents." in judge and "Past User History" not in judge
    assert judge.endswith("### Rating ###\nGive a single numerical rating, e.g. 1")
    assert f"### Explanation: ###\n\n{MISSING}\n\n#####" in b.judge_messages(ex, "  ")[0]["content"]


def test_fit_drops_the_oldest_items_first(prompt_data, domain: str) -> None:
    b = PromptBuilder(domain)

    def count(text: str) -> int:
        return len(text.split())

    ex = max(prompt_data[domain]["test"], key=lambda e: len(e.history))
    n = len(ex.history)
    assert n >= 4
    full = count(b.rating_prompt(ex))
    assert b.fit(ex, count, full) == (ex, 0)
    for keep in (n - 1, 2, 1):
        kept = replace(ex, history=ex.history[n - keep:])
        limit = count(b.rating_prompt(kept))
        fitted, dropped = b.fit(ex, count, limit)
        assert dropped == n - keep
        assert fitted.history == ex.history[n - keep:]  # the most recent items stay
        assert fitted.example_id == ex.example_id and fitted.target == ex.target
    one = count(b.rating_prompt(replace(ex, history=ex.history[-1:])))
    with pytest.raises(PromptTooLongError) as err:
        b.fit(ex, count, one - 1)
    assert err.value.example_id == ex.example_id and err.value.tokens == one and err.value.limit == one - 1
    assert ex.example_id in str(err.value) and str(one) in str(err.value) and str(one - 1) in str(err.value)
    # fitting another rendering (the verification prompt) works the same way
    verify = lambda e: b.verification_messages(e, "Likes it.")[0]["content"]  # noqa: E731
    fitted, dropped = b.fit(ex, count, count(verify(replace(ex, history=ex.history[-2:]))), render=verify)
    assert dropped == n - 2


def test_builder_validates_its_inputs(prompt_data) -> None:
    with pytest.raises(ValueError, match="domain"):
        PromptBuilder("books")
    with pytest.raises(ValueError, match="version"):
        PromptBuilder("beauty", PromptOptions(version="v999"))
    with pytest.raises(ValueError, match="ablation"):
        PromptBuilder("beauty", PromptOptions(ablation="no-title"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method"):
        PromptBuilder("beauty", PromptOptions(method="tot"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="domain"):
        PromptBuilder("beauty").rating_prompt(prompt_data["movies"]["test"][0])
    assert ABLATIONS == ("none", "no-review", "no-review-no-rating", "no-description", "one-shot")


def test_every_ablation_renders_every_real_example(prompt_data, domain: str) -> None:
    train, test = prompt_data[domain]["train"], prompt_data[domain]["test"]
    shot = OneShot(choose_one_shot(train, {e.user_id for e in test}, seed=1), REASONING)
    for ablation in ABLATIONS:
        for method in ("cot", "direct"):
            b = PromptBuilder(domain, PromptOptions(method=method, ablation=ablation),
                              shot if ablation == "one-shot" else None)
            for ex in test:
                text = b.rating_prompt(ex)
                assert "${" not in text and "\n\n\n" not in text
                assert b.messages(ex) == [{"role": "user", "content": text}]
