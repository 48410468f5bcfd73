"""SFT rows -> token ids with the loss on the target only.

The prompt is tokenized by `recsaver.backends.hf.prompt_token_ids`, the very function the hf
backend uses at inference, so the student is trained on exactly the tokens it will be given.
Prompt positions get label -100 (ignored by the loss); only the answer and the end-of-turn
marker the chat template puts after it are learned, so the student learns to stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..backends.base import GenerationRequest
from ..backends.hf import prompt_token_ids
from ..data.records import read_jsonl
from ..store import TRAIN

IGNORE = -100


def load_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of an SFT train.jsonl, each checked for a user prompt and an assistant target."""
    path = Path(path)
    if path.is_dir():
        path = path / TRAIN
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (run `recsaver distill build` first)")
    rows = []
    for lineno, row in enumerate(read_jsonl(path), 1):
        messages = row.get("messages")
        if not isinstance(messages, list) or len(messages) < 2:
            raise ValueError(f"{path}:{lineno}: field 'messages' must list the prompt and the assistant answer")
        if messages[-1].get("role") != "assistant" or not str(messages[-1].get("content") or "").strip():
            raise ValueError(f"{path}:{lineno}: field 'messages': the last message must be a non-empty "
                             "assistant answer (the training target)")
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no training rows")
    return rows


def completion_ids(tokenizer: Any, messages: list[dict[str, str]], is_seq2seq: bool) -> list[int]:
    """Token ids of the target: for a causal chat model, what the chat template writes after the
    generation prompt (the answer and its end-of-turn marker); else the answer + EOS."""
    answer = messages[-1]["content"]
    eos = tokenizer.eos_token_id
    if is_seq2seq:
        ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
        return ids + ([eos] if eos is not None else [])
    if getattr(tokenizer, "chat_template", None):
        head = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        if full.startswith(head) and answer in full[len(head):]:
            return list(tokenizer(full[len(head):], add_special_tokens=False)["input_ids"])
    ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    return ids + ([eos] if eos is not None else [])


def tokenize_row(tokenizer: Any, row: dict[str, Any], is_seq2seq: bool, max_length: int) -> dict[str, list[int]] | None:
    """input_ids / attention_mask / labels for one row, or None when it does not fit `max_length`.

    Long rows are dropped, not cut: cutting the prompt would break the rendered instructions,
    and cutting the target would remove the rating the student must learn to give.
    """
    messages = row["messages"]
    prompt = prompt_token_ids(tokenizer, GenerationRequest.from_messages(messages[:-1]))
    target = completion_ids(tokenizer, messages, is_seq2seq)
    if is_seq2seq:
        if len(prompt) > max_length or len(target) > max_length:
            return None
        return {"input_ids": prompt, "attention_mask": [1] * len(prompt), "labels": target}
    if len(prompt) + len(target) > max_length:
        return None
    ids = prompt + target
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [IGNORE] * len(prompt) + target}


def tokenize_rows(tokenizer: Any, rows: list[dict[str, Any]], is_seq2seq: bool,
                  max_length: int) -> tuple[list[dict[str, list[int]]], int]:
    """The tokenized rows that fit, and how many were dropped as too long."""
    out = [tokenize_row(tokenizer, r, is_seq2seq, max_length) for r in rows]
    kept = [t for t in out if t is not None]
    return kept, len(out) - len(kept)
