"""Text cleaning for review and metadata fields.

Amazon dumps carry HTML entities and tags, CDATA debris (`]]>`) and descriptions
that run to tens of thousands of characters; prompts need short, plain text.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

_TAG = re.compile(r"<[^>]{0,400}>")
_CDATA = re.compile(r"<!\[CDATA\[|\]\]>")
_SPACE = re.compile(r"\s+")
_PRICE = re.compile(r"\d[\d,]*(?:\.\d+)?")


def clean_text(value: Any, max_chars: int | None = None) -> str | None:
    """Unescape HTML, strip tags and CDATA debris, collapse whitespace, cap length.

    Returns None for missing or empty values so that "no data" is one thing.
    Capped text ends with an ellipsis so a reader (or a model) sees it was cut.
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value if v is not None)
    elif isinstance(value, float) and math.isnan(value):
        return None
    text = str(value)
    text = _CDATA.sub(" ", text)
    text = html.unescape(text)
    text = _TAG.sub(" ", text)
    text = _CDATA.sub(" ", text)  # entities can hide CDATA markers, e.g. &lt;![CDATA[
    text = _SPACE.sub(" ", text).strip()
    if not text or text.lower() in {"nan", "none", "null"}:
        return None
    if max_chars is not None and len(text) > max_chars:
        text = text[: max(max_chars - 1, 0)].rstrip() + "…"
    return text


def clean_list(values: Any, max_items: int = 10, max_chars: int | None = None) -> tuple[str, ...]:
    """Flatten (2014 nests category paths) and de-duplicate, keeping order."""
    out: list[str] = []
    stack = [values] if not isinstance(values, (list, tuple)) else list(values)
    flat: list[Any] = []
    while stack:
        v = stack.pop(0)
        if isinstance(v, (list, tuple)):
            stack = list(v) + stack
        else:
            flat.append(v)
    for v in flat:
        c = clean_text(v, max_chars)
        if c and c not in out:
            out.append(c)
        if len(out) >= max_items:
            break
    return tuple(out)


def parse_price(value: Any) -> float | None:
    """`12.99`, `"$12.99"`, `"$1,299.00"` -> float; NaN, "", "None" and ranges' junk -> None.

    A range such as "$5.99 - $12.99" keeps its lower bound.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) and value >= 0 else None
    m = _PRICE.search(str(value))
    if not m:
        return None
    try:
        price = float(m.group(0).replace(",", ""))
    except ValueError:
        return None
    return price if math.isfinite(price) else None
