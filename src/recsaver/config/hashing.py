"""A config as a plain dict, and its stable hash.

Experiment run folders resume by these hashes: any change to the output of either
function reruns every finished cell, so keep them byte-for-byte as they are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


def config_dict(cfg: Any) -> dict[str, Any]:
    """Plain JSON-able dict (tuples become lists); what the hash and run.json see."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=list))


def config_hash(cfg: Any, length: int = 16) -> str:
    """Stable across runs and machines: sha256 of canonical JSON (sorted keys)."""
    data = cfg if isinstance(cfg, dict) else config_dict(cfg)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]
