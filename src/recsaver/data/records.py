"""The records every step exchanges: items, history entries, examples, predictions.

The JSON field names are a public contract (later steps and outside checks read
them), so `to_dict`/`from_dict` spell them out instead of relying on `asdict`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

RATINGS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Item:
    """An item's prompt fields. `extra`: more (name, value) fields of an imported items table, in column
    order, each shown as a `name: value` line; pairs rather than a dict keep the record frozen and
    hashable. Written only when present, so items without extras serialize as they always did."""

    title: str | None = None
    brand: str | None = None
    categories: tuple[str, ...] = ()
    description: str | None = None
    price: float | None = None
    extra: tuple[tuple[str, str | None], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "title": self.title,
            "brand": self.brand,
            "categories": list(self.categories),
            "description": self.description,
            "price": self.price,
        }
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Item:
        d = d or {}
        return cls(
            title=d.get("title"),
            brand=d.get("brand"),
            categories=tuple(d.get("categories") or ()),
            description=d.get("description"),
            price=d.get("price"),
            extra=tuple((str(k), v) for k, v in (d.get("extra") or {}).items()),
        )


@dataclass(frozen=True)
class HistoryEntry:
    item_id: str
    timestamp: int
    rating: int
    review_title: str | None
    review_text: str | None
    item: Item = field(default_factory=Item)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "timestamp": self.timestamp,
            "rating": self.rating,
            "review_title": self.review_title,
            "review_text": self.review_text,
            "item": self.item.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HistoryEntry:
        return cls(
            item_id=d["item_id"],
            timestamp=int(d["timestamp"]),
            rating=int(d["rating"]),
            review_title=d.get("review_title"),
            review_text=d.get("review_text"),
            item=Item.from_dict(d.get("item")),
        )


@dataclass(frozen=True)
class Target:
    item_id: str
    timestamp: int
    item: Item = field(default_factory=Item)

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "timestamp": self.timestamp, "item": self.item.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Target:
        return cls(item_id=d["item_id"], timestamp=int(d["timestamp"]), item=Item.from_dict(d.get("item")))


@dataclass(frozen=True)
class Example:
    """One rating-prediction task: a user's chronological history and a new item."""

    example_id: str
    domain: str
    user_id: str
    rating: int
    target: Target
    history: tuple[HistoryEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "example_id": self.example_id,
            "domain": self.domain,
            "user_id": self.user_id,
            "rating": self.rating,
            "target": self.target.to_dict(),
            "history": [h.to_dict() for h in self.history],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Example:
        return cls(
            example_id=d["example_id"],
            domain=d["domain"],
            user_id=d["user_id"],
            rating=int(d["rating"]),
            target=Target.from_dict(d["target"]),
            history=tuple(HistoryEntry.from_dict(h) for h in d["history"]),
        )


def example_id(domain: str, user_id: str, item_id: str, timestamp: int) -> str:
    """Stable across runs, machines and library versions (unlike `hash()`)."""
    key = f"{domain}|{user_id}|{item_id}|{timestamp}".encode()
    return hashlib.sha1(key).hexdigest()[:16]


@dataclass(frozen=True)
class Prediction:
    example_id: str
    rating_true: int
    rating_pred: int | None
    probs: tuple[float, ...] | None = None
    reasoning: str | None = None
    raw: str | None = None
    # "parsed" from the answer text, "forced" from P(1..5) after an appended rating header
    # (the answer ran out of tokens or broke the format), None when there is no rating.
    rating_source: str | None = None
    # "failed": a model call for this example failed after its retries (`error` says why). Such a
    # prediction is no answer at all: metrics leave it out and count it; a rerun retries it.
    status: str = "ok"
    error: str | None = None
    # A reasoning model's thinking (`<think>` block or `reasoning_content`), kept out of `reasoning`;
    # written only when set, so other models' predictions stay byte-identical.
    thinking: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "example_id": self.example_id,
            "status": self.status,
            "error": self.error,
            "rating_true": self.rating_true,
            "rating_pred": self.rating_pred,
            "probs": list(self.probs) if self.probs is not None else None,
            "reasoning": self.reasoning,
            "raw": self.raw,
            "rating_source": self.rating_source,
            **({"thinking": self.thinking} if self.thinking is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prediction:
        probs = d.get("probs")
        return cls(
            example_id=d["example_id"],
            rating_true=int(d["rating_true"]),
            rating_pred=None if d.get("rating_pred") is None else int(d["rating_pred"]),
            probs=tuple(float(p) for p in probs) if probs is not None else None,
            reasoning=d.get("reasoning"),
            raw=d.get("raw"),
            rating_source=d.get("rating_source"),
            status=d.get("status") or "ok",
            error=d.get("error"),
            thinking=d.get("thinking"),
        )


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write atomically (temp file + rename) so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    with open(tmp, "wb") as f:
        for row in rows:
            f.write(orjson.dumps(row))
            f.write(b"\n")
            n += 1
    tmp.replace(path)
    return n


def write_json(path: Path, obj: Any) -> None:
    """Pretty JSON, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str) + b"\n")
    tmp.replace(path)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({e})") from None


def load_examples(path: Path) -> list[Example]:
    return [Example.from_dict(d) for d in read_jsonl(path)]


def load_predictions(path: Path) -> list[Prediction]:
    return [Prediction.from_dict(d) for d in read_jsonl(path)]
