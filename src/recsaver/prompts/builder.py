"""The one object that owns the prompt text: rating prompts, answers, training rows, Rec-SAVER prompts.

After DSPy: the teacher prompt at inference, the fine-tuning rows and the
student prompt are all rendered by the same `PromptBuilder`, and the answers it
writes are the ones `parse_answer` reads, so they cannot drift apart.

Rendering choices (paper Table 12, Appendix A):
- Every history item prints all of Table 12's lines (Title, Brand, Categories,
  Description, Item Price, User Rating, User Review), oldest first; a missing
  value prints as "N/A" rather than dropping the line, so every item has the
  same shape. Categories are joined with ", ", prices print as "$12.99", and
  the review is its title and text joined as one sentence run
  ("Great scent. I love it").
- Table 12's separator before the task description is OCR-garbled in our copy
  ("HHHEH"); it is rendered as "#####".
- Direct prediction (Table 2) drops the reasoning sentences ("Your reasoning
  explanation ..." and "After your reasoning, ...") and the Reason block.
- Ablations (Section 4.2) remove whole lines: no-review drops "User Review",
  no-review-no-rating also "User Rating", no-description drops "Description"
  from history and new item; one-shot puts a worked example from another user
  between the preamble and the task, delimited by "### Example ###" and
  "### Now your task ###".
"""

from __future__ import annotations

import operator
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, TypeGuard, get_args

from ..config.schema import ABLATIONS, METHODS
from ..data.records import RATINGS, Example, HistoryEntry, Item
from .grammar import rating_grammar, rating_regex
from .parse import ParsedAnswer, has_rating_header, parse_answer, scrub_explanation
from .rating import RATING_HEADER
from .templates import available_versions, load_template, without_lines

Method = Literal["cot", "direct"]
Ablation = Literal["none", "no-review", "no-review-no-rating", "no-description", "one-shot"]
# The allowed values are declared once, in the config schema; these literals type them for mypy.
assert get_args(Method) == METHODS and get_args(Ablation) == ABLATIONS, "config.schema and prompts disagree"


def as_method(value: object) -> Method:
    """`value` as a `Method` (e.g. from a step config), or a ValueError."""
    if value == "cot" or value == "direct":
        return value
    raise ValueError(f"method must be one of {METHODS}, got {value!r}")


def _is_ablation(value: object) -> TypeGuard[Ablation]:
    return value in ABLATIONS


def as_ablation(value: object) -> Ablation:
    """`value` as an `Ablation` (e.g. from a run's config), or the ValueError `PromptBuilder` raises."""
    if not _is_ablation(value):
        raise ValueError(f"ablation must be one of {ABLATIONS}, got {value!r}")
    return value

MISSING = "N/A"
EXPLAIN_VARIANTS = ("paper", "meaning", "reasons")
RATING_MEANINGS = {1: "strongly disliked", 2: "disliked", 3: "felt mixed about", 4: "liked", 5: "loved"}
# The `reasons` prompt: what to argue, per rating (issue 18: with `meaning`, explanations of a 3 argued for a 1
# or a 5 as often as for a 3, and 4 and 5 read alike). `{item}` is the domain's item noun.
RATING_GUIDANCE = {
    1: "say what about this {item} the user would find disappointing or unsuitable, given the tastes the history "
       "shows",
    2: "say what about this {item} the user would find disappointing, and what little in it might still appeal",
    3: "say both what the user would appreciate about this {item} and what would disappoint them, and why "
       "neither outweighs the other",
    4: "say what the user would appreciate about this {item}, and what small reservation keeps it from being a "
       "favourite",
    5: "say what the user would appreciate about this {item}, and why it matches the user's tastes especially "
       "well",
}
REASON_HEADER = "### Reason ###\n"

# Domain wording of Table 12: the item noun, its capitalized label, and the verb of the history.
DOMAIN_WORDS: dict[str, dict[str, str]] = {
    "beauty": {"item": "product", "Item": "Product", "action": "purchase"},
    "movies": {"item": "video (movies and tv)", "Item": "Video (Movies and TV)", "action": "watch"},
    # Users' own data (`data import`): neutral words, since nothing says what the items are.
    "generic": {"item": "item", "Item": "Item", "action": "interaction"},
}

# Lines each ablation removes from history items; the new item never shows rating or review.
_DROPPED: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "no-review": frozenset({"review"}),
    "no-review-no-rating": frozenset({"review", "rating"}),
    "no-description": frozenset({"description"}),
    "one-shot": frozenset(),
}
_NEW_ITEM_DROPPED = frozenset({"rating", "review"})
_SPACE = re.compile(r"\s+")


class PromptTooLongError(ValueError):
    """The prompt exceeds the token limit even with a single history item."""

    def __init__(self, example_id: str, tokens: int, limit: int) -> None:
        self.example_id, self.tokens, self.limit = example_id, tokens, limit
        super().__init__(f"example {example_id}: the prompt is {tokens} tokens with a single history item, "
                         f"over the limit of {limit} tokens")


@dataclass(frozen=True)
class PromptOptions:
    method: Method = "cot"
    ablation: Ablation = "none"
    version: str = "v1"


@dataclass(frozen=True)
class OneShot:
    """A worked example from another user of the train split, and the reasoning shown for it."""

    example: Example
    reasoning: str


def _one_line(value: str | None) -> str | None:
    """Collapse whitespace so that a field always stays on its own line."""
    if value is None:
        return None
    value = _SPACE.sub(" ", value).strip()
    return value or None


def _review(entry: HistoryEntry) -> str | None:
    title, text = _one_line(entry.review_title), _one_line(entry.review_text)
    if not title or (text and text.startswith(title)):
        return text or title
    if not text:
        return title
    return f"{title} {text}" if title[-1] in ".!?…" else f"{title}. {text}"


def _price(price: float | None) -> str:
    return MISSING if price is None else f"${price:,.2f}"


class PromptBuilder:
    def __init__(self, domain: str, options: PromptOptions = PromptOptions(), one_shot: OneShot | None = None):
        if domain not in DOMAIN_WORDS:
            raise ValueError(f"unknown domain {domain!r}; known: {sorted(DOMAIN_WORDS)}")
        if options.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {options.method!r}")
        if options.ablation not in ABLATIONS:
            raise ValueError(f"ablation must be one of {ABLATIONS}, got {options.ablation!r}")
        if options.version not in available_versions():
            raise ValueError(f"unknown prompt version {options.version!r}; available: {available_versions()}")
        if options.ablation == "one-shot" and one_shot is None:
            raise ValueError("the one-shot ablation needs a OneShot (see choose_one_shot)")
        if one_shot is not None and options.ablation != "one-shot":
            raise ValueError(f"a OneShot was given but the ablation is {options.ablation!r}, not 'one-shot'")
        if one_shot is not None:
            if one_shot.example.domain != domain:
                raise ValueError(f"one-shot example is from domain {one_shot.example.domain!r}, not {domain!r}")
            if options.method == "cot" and not one_shot.reasoning.strip():
                raise ValueError("the one-shot example needs a reasoning text for the cot method")
        self.domain = domain
        self.options = options
        self.one_shot = one_shot
        self.words = DOMAIN_WORDS[domain]
        version = options.version
        self._rating = load_template("rating" if options.method == "cot" else "rating_direct", version)
        item = load_template("item", version)
        dropped = _DROPPED[options.ablation]
        self._history_item = without_lines(item, dropped)
        self._new_item = without_lines(item, dropped | _NEW_ITEM_DROPPED)
        self._one_shot = load_template("one_shot", version)
        self._explain = load_template("explain", version)
        self._explain_meaning = load_template("explain_meaning", version)
        self._explain_reasons = load_template("explain_reasons", version)
        self._judge = load_template("judge", version)
        self._verify = load_template("verify", version)

    def __repr__(self) -> str:
        return f"PromptBuilder({self.domain!r}, {self.options!r}, one_shot={self.one_shot is not None})"

    # ---- rendering pieces -------------------------------------------------------------------------

    def _check(self, example: Example) -> None:
        if example.domain != self.domain:
            raise ValueError(f"example {example.example_id} is from domain {example.domain!r}, "
                             f"this builder renders {self.domain!r}")
        if self.one_shot is not None and example.user_id == self.one_shot.example.user_id:
            raise ValueError(f"example {example.example_id}: the one-shot example is from the same user")

    def _item_fields(self, item: Item) -> dict[str, str]:
        categories = ", ".join(c for c in (_one_line(c) for c in item.categories) if c)
        return {
            "Item": self.words["Item"],
            "title": _one_line(item.title) or MISSING,
            "brand": _one_line(item.brand) or MISSING,
            "categories": categories or MISSING,
            "description": _one_line(item.description) or MISSING,
            # An imported item's extra fields follow its price line, one `name: value` line each (the
            # template has fixed placeholders; an item without extras renders exactly as before).
            "price": _price(item.price) + "".join(f"\n{_one_line(name) or MISSING}: {_one_line(value) or MISSING}"
                                                  for name, value in item.extra),
        }

    def _history(self, example: Example) -> str:
        blocks = [
            self._history_item.substitute(self._item_fields(h.item), rating=str(h.rating),
                                          review=_review(h) or MISSING)
            for h in example.history
        ]
        return "\n\n".join(blocks)

    def _new_item_text(self, example: Example) -> str:
        return self._new_item.substitute(self._item_fields(example.target.item))

    def _context(self, example: Example) -> dict[str, str]:
        return {**self.words, "history": self._history(example), "new_item": self._new_item_text(example)}

    def _one_shot_block(self) -> str:
        if self.one_shot is None:
            return ""
        shot = self.one_shot.example
        block = self._one_shot.substitute(
            Item=self.words["Item"], history=self._history(shot), new_item=self._new_item_text(shot),
            answer=self.answer(self.one_shot.reasoning, shot.rating))
        return block + "\n\n"

    # ---- the rating task --------------------------------------------------------------------------

    def rating_prompt(self, example: Example) -> str:
        """The full user prompt of Table 12 (CoT) or Table 2 (direct), with this builder's ablation."""
        self._check(example)
        return self._rating.substitute(self._context(example), one_shot=self._one_shot_block())

    def messages(self, example: Example) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.rating_prompt(example)}]

    def rating_header(self) -> str:
        return RATING_HEADER

    def answer(self, reasoning: str | None, rating: int) -> str:
        """The target text in the exact output format that `parse_answer` reads back with format_ok."""
        rating = _as_rating(rating)
        return self.answer_prefix(reasoning) + str(rating)

    def answer_prefix(self, reasoning: str | None = None) -> str:
        """The answer up to the rating digit: where rating-token probabilities are read."""
        if self.options.method == "direct":
            return RATING_HEADER
        text = (reasoning or "").strip()
        if not text:
            raise ValueError("the cot answer needs a non-empty reasoning")
        if has_rating_header(text):
            raise ValueError("the reasoning contains a rating header line; it would not parse back")
        return f"{REASON_HEADER}{text}\n\n{RATING_HEADER}"

    def training_row(self, example: Example, reasoning: str | None, rating: int) -> dict:
        """A fine-tuning row in both chat and prompt/completion form, rendered like inference prompts."""
        prompt = self.rating_prompt(example)
        completion = self.answer(reasoning, rating)
        return {
            "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}],
            "prompt": prompt,
            "completion": completion,
        }

    def parse(self, text: str | None) -> ParsedAnswer:
        return parse_answer(text, self.options.method)

    def grammar(self, max_lines: int = 6, max_line_chars: int = 300) -> str:
        return rating_grammar(self.options.method, max_lines=max_lines, max_line_chars=max_line_chars)

    def regex(self, max_lines: int = 6, max_line_chars: int = 300) -> str:
        return rating_regex(self.options.method, max_lines=max_lines, max_line_chars=max_line_chars)

    # ---- Rec-SAVER (Section 3.1) ------------------------------------------------------------------

    def explanation_messages(self, example: Example, rating: int, variant: str = "paper") -> list[dict[str, str]]:
        """Step 1: a post hoc explanation of the given (gold) rating; the answer is a Reason block.

        `variant` "paper" is the paper's prompt; "meaning" also says what the rating means ("the user
        strongly disliked it") and asks for the reasons behind that judgement (issue 18: small writers
        asked to explain a 1 wrote praise); "reasons" says what the rating means and what to argue for that
        rating (`RATING_GUIDANCE`: both sides for a 3, the reservation of a 4)."""
        self._check(example)
        if variant not in EXPLAIN_VARIANTS:
            raise ValueError(f"explanation prompt {variant!r}: one of {', '.join(EXPLAIN_VARIANTS)}")
        value = _as_rating(rating)
        if variant == "meaning":
            content = self._explain_meaning.substitute(self._context(example), rating=str(value),
                                                       meaning=RATING_MEANINGS[value])
        elif variant == "reasons":
            guidance = RATING_GUIDANCE[value].format(item=self.words["item"])
            content = self._explain_reasons.substitute(self._context(example), rating=str(value),
                                                       meaning=RATING_MEANINGS[value], guidance=guidance)
        else:
            content = self._explain.substitute(self._context(example), rating=str(value))
        return [{"role": "user", "content": content}]

    def judge_messages(self, example: Example, explanation: str) -> list[dict[str, str]]:
        """Which rating does an (already scrubbed) explanation argue for? Item and explanation only, no history:
        the judge reads what the explanation says, not what it would predict for the user."""
        self._check(example)
        content = self._judge.substitute(self._context(example), explanation=(explanation or "").strip() or MISSING)
        return [{"role": "user", "content": content}]

    def verification_messages(self, example: Example, explanation: str, scrub: bool = True) -> list[dict[str, str]]:
        """Step 3: rate from history, item and explanation, without the gold rating (answer: direct format).

        With `scrub` (the default) the sentences that could leak the rating are removed first, as
        the paper does ("a rating of", "stars", "scores"); an explanation left empty prints "N/A".
        """
        self._check(example)
        text = scrub_explanation(explanation) if scrub else (explanation or "").strip()
        content = self._verify.substitute(self._context(example), explanation=text or MISSING)
        return [{"role": "user", "content": content}]

    # ---- context budget ---------------------------------------------------------------------------

    def fit(self, example: Example, count_tokens: Callable[[str], int], max_prompt_tokens: int,
            render: Callable[[Example], str] | None = None) -> tuple[Example, int]:
        """Drop the oldest history items until the prompt fits; return (example, number dropped).

        `render` defaults to the rating prompt; pass another rendering (e.g. the verification
        prompt's text) to fit that one. Raises PromptTooLongError when one item is still too long.
        """
        render = render or self.rating_prompt
        history = example.history
        tokens = 0
        for dropped in range(max(len(history), 1)):
            candidate = replace(example, history=history[dropped:]) if dropped else example
            tokens = count_tokens(render(candidate))
            if tokens <= max_prompt_tokens:
                return candidate, dropped
        raise PromptTooLongError(example.example_id, tokens, max_prompt_tokens)


def _as_rating(rating: object) -> int:
    """The rating as a plain int in 1..5 (numpy integers accepted; floats and bools are not)."""
    try:
        value = operator.index(rating)  # type: ignore[arg-type]  # any object: index() is the check
    except TypeError:
        value = None
    if value is None or isinstance(rating, bool) or value not in RATINGS:
        raise ValueError(f"rating must be an integer in {RATINGS}, got {rating!r}")
    return value


def choose_one_shot(train: list[Example], exclude_users: set[str], seed: int) -> Example:
    """A worked example for the one-shot ablation: another user's, short, chosen deterministically.

    Among train examples whose user is not excluded, the 20 shortest (fewest history items,
    then fewest characters) form the pool, and `seed` picks one of them.
    """
    pool = [e for e in train if e.user_id not in exclude_users]
    if not pool:
        raise ValueError("no train example from a user outside exclude_users for the one-shot example")

    def size(e: Example) -> tuple[int, int, str]:
        chars = sum(len(h.review_text or "") + len(h.review_title or "") + len(h.item.description or "")
                    + len(h.item.title or "") for h in e.history)
        return len(e.history), chars + len(e.target.item.description or ""), e.example_id

    pool.sort(key=size)
    return random.Random(seed).choice(pool[:20])
