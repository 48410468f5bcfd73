"""Item metadata: `Item`s keyed by the id reviews use, fields cleaned and capped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..clean import clean_list, clean_text, parse_price
from ..records import Item
from .fields import _ident
from .layouts import detect_meta_layout
from .lines import BadInputError, Layout, LineStream, OnBadLine, ReadReport, parse_record


@dataclass(frozen=True)
class FieldCaps:
    """Character caps per field; descriptions in real dumps can be huge."""

    title: int = 200
    brand: int = 120
    category: int = 60
    description: int = 600
    review_title: int = 200
    review_text: int = 1200


_MOVIE_PEOPLE = ("Director", "Directors", "Actors", "Starring", "Contributor", "Studio", "Producers")


def _joined(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _brand(rec: dict[str, Any], layout: Layout, domain: str, caps: FieldCaps) -> str | None:
    raw_details = rec.get("details")
    details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
    candidates = [details.get("Brand"), rec.get("store"), rec.get("brand")]
    if domain == "movies":
        people = [f"{k}: {_joined(details[k])}" for k in _MOVIE_PEOPLE if details.get(k)]
        candidates.append("; ".join(people) if people else None)
    for c in candidates:
        text = clean_text(c, caps.brand)
        if text:
            return text
    return None


def item_from_meta(rec: dict[str, Any], layout: Layout, domain: str, caps: FieldCaps) -> Item:
    cats = rec.get("categories") if layout != "2018" else rec.get("category")
    return Item(
        title=clean_text(rec.get("title"), caps.title),
        brand=_brand(rec, layout, domain, caps),
        categories=clean_list(cats or (), max_chars=caps.category),
        description=clean_text(rec.get("description"), caps.description),
        price=parse_price(rec.get("price")),
    )


def _quick_id(raw: bytes, needles: tuple[bytes, ...]) -> str | None:
    for needle in needles:
        start = raw.rfind(needle)
        if start >= 0:
            start += len(needle)
            end = raw.find(needle[-1:], start)
            if end > start:
                return raw[start:end].decode("utf-8", "replace")
    return None


def read_meta(
    path: Path,
    domain: str,
    wanted: set[str] | None,
    report: ReadReport,
    caps: FieldCaps = FieldCaps(),
    on_bad_line: OnBadLine = "error",
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Item]:
    """Items keyed by the id reviews use (parent_asin in 2023, asin before); only `wanted` ones kept."""
    layout = detect_meta_layout(path)
    key = "parent_asin" if layout == "2023" else "asin"
    # Most meta lines describe items no example needs: find their id with a plain byte search
    # (memchr-fast; a regex over these long lines cost ~30 us each) and skip the full parse.
    # Only lines of wanted items are parsed and validated.
    needles = (f'"{key}": "'.encode(), f"'{key}': '".encode())
    items: dict[str, Item] = {}
    stream = LineStream(path, on_progress)
    for lineno, raw in stream:
        if not raw.strip():
            continue
        if wanted is not None:
            quick_id = _quick_id(raw, needles)
            if quick_id is not None and quick_id not in wanted:
                report.records += 1
                continue
        try:
            rec = parse_record(raw, path, lineno)
            item_id = _ident(rec.get(key), path, lineno, key)
        except BadInputError as err:
            report.skip_or_raise(err, on_bad_line)
            continue
        report.records += 1
        if wanted is None or item_id in wanted:
            items[item_id] = item_from_meta(rec, layout, domain, caps)
    report.lines = stream.lines
    report.sha256 = stream.sha256
    return items
