"""Prompt tokens, stop strings and probe candidates' token ids; all but `_stop_criteria` are
shared with the vLLM backend and need no torch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

# The header, digits and continuation are prompts' (re-exported here for the vLLM backend and the tests).
from ...prompts.rating import DIGITS, RATING_HEADER, rating_continuation  # noqa: F401 - re-exported
from ..base import GenerationRequest, ProbeRequest


def candidate_token_ids(encode: Callable[[str], list[int]], context: str, candidates: Sequence[str],
                        base: list[int] | None = None) -> list[int]:
    """Token ids of `candidates` as they follow `context`, resolved with the tokenizer.

    `encode(text)` tokenizes without special tokens (`base` is `encode(context)` where the caller
    has it). The id is the one token that the candidate adds after the context; where the tokenizer
    merges across that boundary the candidate tokenized alone is used, and it must be a single
    token (else a ValueError naming it).
    """
    if base is None:
        base = encode(context)
    ids = []
    for c in candidates:
        with_c = encode(context + c)
        if len(with_c) == len(base) + 1 and with_c[: len(base)] == base:
            ids.append(with_c[-1])
            continue
        alone = encode(c)
        if len(alone) != 1:
            raise ValueError(f"probe candidate {c!r} is {len(alone)} tokens {alone}, a candidate must be exactly "
                             "one token")
        ids.append(alone[0])
    return ids


def rating_digit_ids(encode: Callable[[str], list[int]]) -> list[int]:
    """Token ids of "1".."5" as they follow the rating header (`candidate_token_ids`)."""
    return candidate_token_ids(encode, RATING_HEADER, DIGITS)


def join_messages(request: GenerationRequest | ProbeRequest) -> str:
    """Plain-text prompt: `prompt_text`, or the messages joined by blank lines (as llama.cpp)."""
    if request.prompt_text is not None:
        return request.prompt_text
    return "\n\n".join(c for _, c in request.messages)


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first occurrence of any stop string, and whether one was found."""
    first = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:first], True) if first >= 0 else (text, False)


def prompt_token_ids(tokenizer: Any, request: GenerationRequest | ProbeRequest) -> list[int]:
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
