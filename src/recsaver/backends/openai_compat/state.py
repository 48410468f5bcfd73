"""The attributes an `OpenAIBackend` sets in its `__init__`, declared once for the mixins that use them."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx


@dataclass
class _Server:
    url: str  # base URL, ending in /v1
    root: str  # the same without /v1: where the tokenize extras live
    in_flight: int = 0
    down_until: float = 0.0  # time.monotonic() until which it is skipped
    served: int = 0  # successful responses
    failures: int = 0  # failed attempts of any kind


class BackendState:
    """Declarations only (no values): `OpenAIBackend.__init__` sets every one of them."""

    model: str
    model_id: str
    context_length: int
    timeout: float
    max_retries: int
    backoff_base: float
    backoff_max: float
    balance: str
    constraint_style: str | None
    chat_probe: str | None
    down_cooldown: float
    concurrency: int

    _servers: list[_Server]
    _lock: threading.Lock
    _rr: int
    _rng: random.Random
    _warned_constraint: bool
    _tokenize_kind: str | None  # which tokenize endpoint works; "none" when none does
    _client: httpx.Client
    _pool: ThreadPoolExecutor
