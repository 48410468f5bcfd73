"""Cache keys and experiment cell hashes are pinned (tests/pinned/record.py says what and why)."""

from __future__ import annotations

import json

from tests.pinned.record import PINS, current


def test_cache_keys_and_cell_hashes_are_unchanged() -> None:
    pinned = json.loads(PINS.read_text())
    now = current()
    changed_keys = sorted(k for k in pinned["cache_keys"] if now["cache_keys"].get(k) != pinned["cache_keys"][k])
    changed_cells = sorted(f"{cfg}: {cell}" for cfg, cells in pinned["cells"].items() for cell in cells
                           if now["cells"].get(cfg, {}).get(cell) != cells[cell])
    assert not changed_keys and not changed_cells, (
        f"cache keys changed: {changed_keys}; cell hashes changed: {changed_cells}. Reruns would recompute them. "
        "If that is intended, run `python -m tests.pinned.record` and say why in the commit.")
    assert set(now["cache_keys"]) == set(pinned["cache_keys"]) and set(now["cells"]) == set(pinned["cells"])


def test_step_defaults_are_the_experiment_defaults() -> None:
    """Issue 16: `predict` with its defaults builds the very requests an experiment cell builds."""
    keys = json.loads(PINS.read_text())["cache_keys"]
    cli = {k[: -len("/cli")]: v for k, v in keys.items() if k.endswith("/cli")}
    assert cli and all(keys[f"{k}/experiment"] == v for k, v in cli.items())
