"""Versioned prompt text: loading `templates/<name>_<version>.txt` and filling it.

The text lives in plain files (`string.Template` placeholders, no logic) so a
reviewer can read the exact prompt next to the paper's Table 12, and a new
wording is a new file (`rating_v2.txt`) rather than an edit that silently
changes old runs. Every template's placeholder set is checked on load, so a
typo in a file fails at once instead of rendering a literal `${titel}`.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from string import Template

# name -> the placeholders its file must use (no more, no fewer).
TEMPLATE_FIELDS: dict[str, frozenset[str]] = {
    "rating": frozenset({"item", "Item", "action", "one_shot", "history", "new_item"}),
    "rating_direct": frozenset({"item", "Item", "action", "one_shot", "history", "new_item"}),
    "item": frozenset({"Item", "title", "brand", "categories", "description", "price", "rating", "review"}),
    "one_shot": frozenset({"Item", "history", "new_item", "answer"}),
    "explain": frozenset({"item", "Item", "action", "history", "new_item", "rating"}),
    "explain_meaning": frozenset({"item", "Item", "action", "history", "new_item", "rating", "meaning"}),
    "explain_reasons": frozenset({"item", "Item", "action", "history", "new_item", "rating", "meaning",
                                  "guidance"}),
    "judge": frozenset({"item", "Item", "new_item", "explanation"}),
    "verify": frozenset({"item", "Item", "action", "history", "new_item", "explanation"}),
}

_FILE = re.compile(r"^(?P<name>[a-z_]+)_(?P<version>v\d+)\.txt$")
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def _folder() -> Traversable:
    return resources.files("recsaver.prompts") / "templates"


def available_versions() -> tuple[str, ...]:
    """Versions for which every template exists."""
    found: dict[str, set[str]] = {}
    for entry in _folder().iterdir():
        m = _FILE.match(entry.name)
        if m:
            found.setdefault(m["version"], set()).add(m["name"])
    return tuple(sorted(v for v, names in found.items() if names >= set(TEMPLATE_FIELDS)))


@cache
def load_template(name: str, version: str) -> Template:
    """The template `name` at `version`; its trailing newline is dropped."""
    if name not in TEMPLATE_FIELDS:
        raise ValueError(f"unknown template {name!r}; known: {sorted(TEMPLATE_FIELDS)}")
    path = _folder() / f"{name}_{version}.txt"
    if not path.is_file():
        raise ValueError(f"no template {name}_{version}.txt; prompt versions available: {available_versions()}")
    text = path.read_text(encoding="utf-8").rstrip("\n")
    template = Template(text)
    if not template.is_valid():
        raise ValueError(f"{name}_{version}.txt: malformed placeholder (write a literal dollar as $$)")
    used = set(template.get_identifiers())
    if used != TEMPLATE_FIELDS[name]:
        raise ValueError(f"{name}_{version}.txt: placeholders {sorted(used)} differ from the expected "
                         f"{sorted(TEMPLATE_FIELDS[name])}")
    return template


def without_lines(template: Template, fields: frozenset[str] | set[str]) -> Template:
    """A copy of `template` without the lines that use any of `fields`.

    This is how ablations remove a field: the whole `User Review: ...` line goes,
    not just its value, so the model never sees an empty field.
    """
    if not fields:
        return template
    kept = [line for line in template.template.split("\n") if not set(_PLACEHOLDER.findall(line)) & set(fields)]
    return Template("\n".join(kept))
