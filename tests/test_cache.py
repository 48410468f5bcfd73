"""The generation cache: keys, durability and resume logic (our own logic; a counting fake engine)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from recsaver.backends.base import Generation, GenerationRequest, SamplingParams
from recsaver.cache import CachedBackend, GenerationCache, count_generations


class CountingEngine:
    """Echoes a deterministic answer and counts calls; fails requests whose tag says so."""

    model_id = "fake/counting"
    context_length = 1000

    def __init__(self) -> None:
        self.calls: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest], on_result=None) -> list[Generation]:
        out = []
        for i, r in enumerate(requests):
            self.calls.append(r)
            g = (Generation(text=None, error="boom") if r.tag == "fail"
                 else Generation(text=f"{r.messages[0][1]}#{r.sample_index}", completion_tokens=3))
            if on_result:
                on_result(i, g)
            out.append(g)
        return out

    def count_tokens(self, request: GenerationRequest) -> int:
        return len(request.messages[0][1].split())

    def close(self) -> None:
        pass


def req(text: str, sample: int = 0, temperature: float = 0.0, tag: str = "") -> GenerationRequest:
    return GenerationRequest.from_messages([{"role": "user", "content": text}], sample_index=sample,
                                           params=SamplingParams(temperature=temperature), tag=tag)


def test_key_covers_what_changes_the_output() -> None:
    base = req("hello")
    assert base.key("m") == req("hello", tag="other tag").key("m")
    assert len({base.key("m"), base.key("m2"), req("hello!").key("m"), req("hello", sample=1).key("m"),
                req("hello", temperature=0.5).key("m")}) == 5


def test_second_run_is_served_from_the_cache(tmp_path: Path) -> None:
    engine = CountingEngine()
    backend = CachedBackend(engine, GenerationCache(tmp_path / "c.sqlite"))
    requests = [req("a"), req("b"), req("a", sample=1)]
    first = backend.generate(requests)
    assert len(engine.calls) == 3 and not any(g.cached for g in first)
    again = CachedBackend(engine, GenerationCache(tmp_path / "c.sqlite"))
    second = again.generate(requests + [req("c")])
    assert len(engine.calls) == 4  # only "c" was new
    assert [g.text for g in second[:3]] == [g.text for g in first]
    assert all(g.cached for g in second[:3]) and not second[3].cached
    assert again.stats.hits == 3 and again.stats.misses == 1


def test_failures_are_recorded_and_retried_never_cached(tmp_path: Path) -> None:
    engine = CountingEngine()
    cache = GenerationCache(tmp_path / "c.sqlite")
    backend = CachedBackend(engine, cache)
    out = backend.generate([req("x", tag="fail"), req("y")])
    assert out[0].error == "boom" and out[1].ok
    assert cache.count() == 1 and len(cache.failures()) == 1
    backend.generate([req("x", tag="fail")])
    assert len(engine.calls) == 3  # retried


def test_each_result_is_committed_as_it_arrives(tmp_path: Path) -> None:
    """A reader on another connection sees result 1 before result 2 is produced (kill -9 safety)."""
    path = tmp_path / "c.sqlite"
    seen: list[int] = []

    def spy(i: int, g: Generation) -> None:
        seen.append(count_generations(path))

    CachedBackend(CountingEngine(), GenerationCache(path)).generate([req("a"), req("b"), req("c")], on_result=spy)
    assert seen == [1, 2, 3]


def test_count_generations_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    assert count_generations(path) == 0 and not path.exists()
    sqlite3.connect(path).close()  # the file of a run killed before it wrote the schema
    assert count_generations(path) == 0


# ---- claims: two processes on one cache compute each key once --------------------------------------

def test_a_key_claimed_by_a_live_process_is_waited_for_not_computed(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "c.sqlite"
    other = GenerationCache(path)  # another owner (a second run), alive: it holds the claim
    mine, theirs = other.claim([req("a").key("fake/counting")])
    assert mine and not theirs
    engine = CountingEngine()
    backend = CachedBackend(engine, GenerationCache(path), poll_s=0.05)

    def finish_later() -> None:
        import time

        time.sleep(0.3)
        other.put(req("a").key("fake/counting"), "fake/counting", req("a"), Generation(text="from the other run"))

    t = threading.Thread(target=finish_later)
    t.start()
    out = backend.generate([req("a"), req("b")])
    t.join()
    assert [g.text for g in out] == ["from the other run", "b#0"]
    assert [r.messages[0][1] for r in engine.calls] == ["b"]  # "a" was never computed here
    assert backend.stats.waited == 1 and backend.stats.misses == 1


@pytest.mark.parametrize("reaped", [True, False])
def test_a_claim_of_a_dead_process_is_taken_over(reaped: bool, tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    path = tmp_path / "c.sqlite"
    cache = GenerationCache(path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    if reaped:
        dead.wait()
    else:  # exited but not waited for: a zombie, as a run killed by a parent that has not reaped it yet
        while Path(f"/proc/{dead.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.05)
    key = req("a").key("fake/counting")
    with sqlite3.connect(path) as con:  # what a run killed with SIGKILL leaves behind
        con.execute("INSERT INTO claims VALUES (?, 'gone', ?, ?, strftime('%s','now'))", (key, cache.host, dead.pid))
    engine = CountingEngine()
    out = CachedBackend(engine, cache).generate([req("a")])
    dead.wait()
    assert out[0].text == "a#0" and len(engine.calls) == 1
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT count(*) FROM claims").fetchone()[0] == 0  # released once stored


def test_a_failed_call_releases_its_claim(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path / "c.sqlite")
    CachedBackend(CountingEngine(), cache).generate([req("x", tag="fail")])
    second = GenerationCache(tmp_path / "c.sqlite")
    mine, theirs = second.claim([req("x", tag="fail").key("fake/counting")])
    assert mine and not theirs  # free to retry at once
