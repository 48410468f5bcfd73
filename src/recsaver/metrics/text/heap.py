"""glibc heap reuse around the BERTScore step (a no-op where ``mallopt`` is missing)."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def _heap_reuse(enabled: bool = True) -> Iterator[None]:
    """Let glibc reuse freed memory for the encoder's large temporaries, for this block only.

    By default glibc serves large allocations with fresh ``mmap`` pages and unmaps them on
    free, so every layer's output costs page faults again (on this VM about 10-15% of the
    encoder's time).  Inside the block both thresholds are raised so the heap is reused;
    afterwards they are set back to glibc's defaults (128 KiB) and the heap is trimmed.
    A no-op where glibc's ``mallopt`` is not available.
    """
    libc = None
    if enabled and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc only
        except (OSError, AttributeError):
            libc = None
    if libc is None:
        yield
        return
    m_trim_threshold, m_mmap_threshold, big, default = -1, -3, 1 << 30, 128 * 1024
    libc.mallopt(m_mmap_threshold, big)
    libc.mallopt(m_trim_threshold, big)
    try:
        yield
    finally:
        libc.mallopt(m_mmap_threshold, default)
        libc.mallopt(m_trim_threshold, default)
        libc.malloc_trim(0)
