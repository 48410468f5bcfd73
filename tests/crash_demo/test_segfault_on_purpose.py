"""Collected only by tests/test_crash_isolation.py (RECSAVER_CRASH_DEMO=1): a test that segfaults between
two that pass, to prove a native crash fails one test, named with its signal, and the suite goes on."""

import ctypes


def test_passes_before() -> None:
    assert 1 + 1 == 2


def test_segfaults() -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV in this process, as a broken native build would


def test_passes_after() -> None:
    assert 2 + 2 == 4
