"""Prompt text and tokens, stop strings and the rating header; all but `_stop_criteria` are
shared with the vLLM backend and need no torch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

# The header, digits and continuation are prompts' (re-exported here for the vLLM backend and the tests).
from ...prompts.rating import DIGITS, RATING_HEADER, rating_continuation  # noqa: F401
from ..base import GenerationRequest


def rating_digit_ids(encode: Callable[[str], list[int]]) -> list[int]:
    """Token ids of "1".."5" as they follow the rating header, resolved with the tokenizer.

    `encode(text)` tokenizes without special tokens. The id is the one token that the digit
    adds after the rating header; where the tokenizer merges across that boundary the
    digit tokenized alone is used, and it must be a single token.
    """
    base = encode(RATING_HEADER)
    ids = []
    for d in DIGITS:
        with_digit = encode(RATING_HEADER + d)
        if len(with_digit) == len(base) + 1 and with_digit[: len(base)] == base:
            ids.append(with_digit[-1])
            continue
        alone = encode(d)
        if len(alone) != 1:
            raise RuntimeError(f"rating digit {d!r} is {len(alone)} tokens, expected 1")
        ids.append(alone[0])
    return ids


def join_messages(request: GenerationRequest) -> str:
    """Plain-text prompt: `prompt_text`, or the messages joined by blank lines (as llama.cpp)."""
    if request.prompt_text is not None:
        return request.prompt_text
    return "\n\n".join(c for _, c in request.messages)


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first occurrence of any stop string, and whether one was found."""
    first = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:first], True) if first >= 0 else (text, False)


def prompt_token_ids(tokenizer: Any, request: GenerationRequest) -> list[int]:
    """The exact prompt tokens the model (the encoder, for seq2seq) sees: the chat template with
    a generation prompt, or the plain text (`join_messages`) where there is no template.

    Shared with fine-tuning, so training rows and inference prompts are tokenized alike.
    """
    if request.prompt_text is not None or not getattr(tokenizer, "chat_template", None):
        return list(tokenizer(join_messages(request), add_special_tokens=True)["input_ids"])
    rendered = tokenizer.apply_chat_template(request.message_dicts(), add_generation_prompt=True, tokenize=False)
    return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])


def _stop_criteria(tokenizer: Any, stops: Sequence[str], start: int) -> Any:
    """A StoppingCriteria that ends each row once its generated text holds a stop string.

    Only a window of the last tokens is decoded per step (a stop string of k characters
    spans at most k tokens), so the check costs little.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    stops = [s for s in stops if s]
    window = max(len(s) for s in stops) + 4

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            flags = []
            for row in input_ids.tolist():
                gen = row[start:]
                text = tokenizer.decode(gen[-window:], skip_special_tokens=True)
                flags.append(any(s in text for s in stops))
            return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_Stop()])
