"""The rating-probe primitive (`Backend.probe`) on real engines: SmolLM2-135M through llama.cpp in
process, through llama-cpp-python's OpenAI-compatible server, and cached in SQLite.

(The transformers backend's probe is tested in test_hf.py, which already loads a model.)
A few tokens per call, so the file stays short on two cores.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import pytest

from recsaver.backends import BackendOptions, load_backend
from recsaver.backends.base import Backend, GenerationRequest, Probe, ProbeRequest, SamplingParams
from recsaver.cache import CachedBackend, GenerationCache
from recsaver.prompts.rating import DIGITS, RATING_HEADER, rating_continuation, rating_probe

from .llama_server import start_llama_server

pytestmark = pytest.mark.slow

ASK = GenerationRequest.from_messages(
    [{"role": "user", "content": "Rate the movie Up from 1 to 5. Answer '### Rating ###' and a digit."}],
    params=SamplingParams(max_tokens=8), rating_probs=True, tag="up")


def check(p: Probe) -> None:
    assert p.ok, p.error
    assert p.probs is not None and len(p.probs) == 5 and all(x >= 0 for x in p.probs)
    assert math.isclose(sum(p.probs), 1.0, abs_tol=1e-9)
    assert p.mass is not None and 0 < p.mass <= 1


# ---- the request and result types (no model) ----------------------------------------------------
def test_probe_request_key_covers_what_changes_the_output() -> None:
    base = rating_probe(ASK, "fine")
    assert base.continuation == "fine\n\n" + RATING_HEADER and base.candidates == DIGITS and base.tag == "up"
    assert base.messages == ASK.messages and base.prompt_text is None
    assert base.key("m") == ProbeRequest.from_request(ASK, rating_continuation("fine"), DIGITS).key("m")
    assert base.key("m") == rating_probe(GenerationRequest(messages=ASK.messages, tag="other"), "fine").key("m")
    variants = {base.key("m"), base.key("m2"), rating_probe(ASK, "good").key("m"),
                ProbeRequest.from_request(ASK, base.continuation, DIGITS[:4]).key("m"),
                ProbeRequest(messages=ASK.messages, continuation=base.continuation, candidates=DIGITS,
                             prompt_text="plain").key("m"),
                ASK.key("m")}
    assert len(variants) == 6
    p = Probe(probs=(0.5, 0.5), mass=0.25, prompt_tokens=7, latency_s=0.1)
    assert Probe.from_dict(p.to_dict()) == p and Probe.from_dict(p.to_dict(), cached=True).cached
    assert not Probe(probs=None, error="x").ok


# ---- llama.cpp in process ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def llama() -> Backend:
    backend = load_backend("llamacpp/smollm2-135m", BackendOptions(n_ctx=512))
    yield backend
    backend.close()


def test_llamacpp_probe_is_the_rating_read_out(llama) -> None:
    # llama.cpp's logits of a quantized model depend a little on how the tokens were evaluated (one batch,
    # or one at a time while sampling), and prefix reuse keeps what the last call evaluated. So compare
    # from the same start: a fresh context, the same greedy answer, then the read-out of the same tokens.
    llama.llm.reset()
    g = llama.generate([ASK])[0]
    assert g.ok and g.rating_probs is not None, g.error
    llama.llm.reset()
    plain_answer = llama.generate([replace(ASK, rating_probs=False)])[0]
    assert plain_answer.text == g.text and plain_answer.rating_probs is None
    rated = llama.probe([rating_probe(ASK, g.text or "")])[0]
    check(rated)
    # the same tokens and logits as generate's read-out: the very same numbers
    assert rated.probs == g.rating_probs and rated.mass == g.digit_mass
    assert rated.prompt_tokens > g.prompt_tokens

    bad = ProbeRequest.from_request(ASK, RATING_HEADER, ("1", "hello world"))
    plain = ProbeRequest(messages=(), prompt_text="Score out of 5:", continuation=" ", candidates=DIGITS)
    seen: list[int] = []
    out = llama.probe([rating_probe(ASK, "It is fun."), bad, plain], on_result=lambda i, p: seen.append(i))
    assert sorted(seen) == [0, 1, 2]
    check(out[0])
    # a candidate of several tokens is an error naming the model and the candidate, not an exception
    assert out[1].probs is None and out[1].error is not None
    assert llama.model_id in out[1].error and "'hello world'" in out[1].error
    check(out[2])


def test_cached_probe_is_a_hit_the_second_time(llama, tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path / "c.sqlite")
    cached = CachedBackend(llama, cache)
    requests = [rating_probe(ASK, "It is a moving film."),
                ProbeRequest.from_request(ASK, RATING_HEADER, ("1", "hello world"))]
    first = cached.probe(requests)
    check(first[0])
    assert first[1].error and not first[0].cached
    assert cached.stats.misses == 2 and cached.stats.hits == 0
    assert cache.count_probes() == 1 and cache.count() == 0  # failures are not stored; generations untouched
    again = CachedBackend(llama, GenerationCache(tmp_path / "c.sqlite"))
    seen: list[int] = []
    second = again.probe(requests, on_result=lambda i, p: seen.append(i))
    assert sorted(seen) == [0, 1]
    assert second[0].cached and second[0].probs == first[0].probs and second[0].mass == first[0].mass
    assert again.stats.hits == 1 and again.stats.misses == 1  # the failure is asked again
    assert not second[1].ok


# ---- an OpenAI-compatible server (llama-cpp-python's) ----------------------------------------------
def test_openai_compat_probe_on_a_real_server(tmp_path: Path) -> None:
    from recsaver.backends.openai_compat import OpenAIBackend

    server = start_llama_server(tmp_path, threads=max(1, min(2, os.cpu_count() or 1)), n_ctx=512)
    try:
        b = OpenAIBackend("smollm2", server.base, api_key_env=None, concurrency=2, max_retries=1)
        try:
            prompt = GenerationRequest(messages=(), prompt_text="Review: a moving film.\nScore out of 5:")
            out = b.probe([ProbeRequest.from_request(prompt, " ", DIGITS), rating_probe(ASK, "fine")])
            check(out[0])
            assert out[0].prompt_tokens > 0
            # a chat probe needs the server to continue an assistant message: a clear error, no call made
            assert out[1].probs is None and out[1].error is not None and "chat_probe" in out[1].error
        finally:
            b.close()
    finally:
        server.stop()


def test_openai_compat_probe_bodies() -> None:
    from recsaver.backends.openai_compat import OpenAIBackend

    def backend(**kwargs) -> OpenAIBackend:  # nothing listens on port 9: no call is made here
        return OpenAIBackend("m", "http://127.0.0.1:9/v1", api_key_env=None, **kwargs)

    chat = rating_probe(ASK, "fine")
    b = backend(chat_probe="continue_final_message")
    try:
        path, body = b._probe_body(chat)
        assert path == "/chat/completions" and body["max_tokens"] == 1 and body["temperature"] == 0.0
        assert body["messages"][-1] == {"role": "assistant", "content": chat.continuation}
        assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
        assert body["logprobs"] is True and body["top_logprobs"] == 20
        plain = ProbeRequest(messages=(), prompt_text="Score:", continuation=" ", candidates=DIGITS)
        path, body = b._probe_body(plain)
        assert path == "/completions" and body["prompt"] == "Score: " and body["logprobs"] == 20
    finally:
        b.close()
    with pytest.raises(ValueError):
        backend(chat_probe="guess")
