"""VLLMBackend's pure logic (no vllm needed) and its error where vllm cannot be imported.

vllm needs a CUDA GPU and does not import on these machines, so the engine itself is not
run here; grouping of samples into n-sample calls, mapping the outputs back, and reading
P(1..5) from per-token top logprobs are tested as plain functions.
"""

from __future__ import annotations

import math
import sys

import pytest

from recsaver.backends.base import GenerationRequest, SamplingParams
from recsaver.backends.vllm import (
    SampleGroup,
    VLLMBackend,
    VLLMUnavailableError,
    digit_distribution,
    group_samples,
    header_position,
    rating_from_logprobs,
)


def req(text: str, **kwargs) -> GenerationRequest:
    return GenerationRequest.from_messages([{"role": "user", "content": text}], **kwargs)


SAMPLED = SamplingParams(temperature=0.8, max_tokens=32, seed=5)


# ---- grouping / mapping --------------------------------------------------------------
def test_samples_of_one_prompt_become_one_n_call():
    reqs = [req("a", params=SAMPLED, sample_index=2), req("b", params=SAMPLED),
            req("a", params=SAMPLED, sample_index=0), req("a", params=SAMPLED, sample_index=1),
            req("a", params=SAMPLED, sample_index=2)]
    groups = group_samples(reqs)
    assert [(g.first, g.n) for g in groups] == [(0, 3), (1, 1)]
    a = groups[0]
    # outputs in sorted sample-index order; duplicate requests share an output
    assert sorted(a.members) == [(0, 2), (2, 0), (3, 1), (4, 2)]
    assert a.seed == 5 * 1_000_003 + 0
    assert groups[1].members == [(1, 0)] and groups[1].seed == 5 * 1_000_003


def test_anything_but_sample_index_splits_groups():
    base = req("a", params=SAMPLED)
    variants = [base, base.with_sample(1),
                req("a", params=SamplingParams(temperature=0.8, max_tokens=32, seed=6)),
                req("a", params=SAMPLED, grammar="root ::= x"),
                req("a", params=SAMPLED, rating_probs=True),
                req("a", params=SAMPLED, prompt_text="a"),
                GenerationRequest.from_messages([{"role": "system", "content": "s"}, {"role": "user", "content": "a"}],
                                                params=SAMPLED)]
    groups = group_samples(variants)
    assert [g.n for g in groups] == [2, 1, 1, 1, 1, 1]
    assert [g.first for g in groups] == [0, 2, 3, 4, 5, 6]


def test_greedy_samples_are_run_once_and_shared():
    greedy = SamplingParams(max_tokens=8)
    reqs = [req("a", params=greedy, sample_index=i) for i in range(4)]
    (g,) = group_samples(reqs)
    assert g.n == 1 and g.members == [(i, 0) for i in range(4)]


def test_group_only_the_given_indices():
    reqs = [req("a", params=SAMPLED, sample_index=i) for i in range(3)] + [req("b", params=SAMPLED)]
    groups = group_samples(reqs, indices=[0, 2, 3])  # request 1 was, say, too long
    assert [(g.first, g.n, sorted(g.members)) for g in groups] == [(0, 2, [(0, 0), (2, 1)]), (3, 1, [(3, 0)])]


def test_each_sample_takes_the_output_of_its_rank_in_its_group():
    reqs = [req(p, params=SAMPLED, sample_index=s) for s in (3, 1, 0) for p in ("x", "y", "z")]
    groups = group_samples(reqs)
    rank = {0: 0, 1: 1, 3: 2}
    assert all(isinstance(g, SampleGroup) and g.n == 3 for g in groups)
    taken = sorted((i, j) for g in groups for i, j in g.members)
    assert taken == [(i, rank[r.sample_index]) for i, r in enumerate(reqs)]


# ---- digit probabilities from top logprobs -----------------------------------------------
VOCAB = {0: "### Reason ###", 1: "\n", 2: "good", 3: " film", 4: "### Rating ###", 5: "4",
         6: "1", 7: "2", 8: "3", 9: "5", 10: "###", 11: " Rating", 12: " ###\n", 13: " "}
DIGITS = [6, 7, 8, 5, 9]  # ids of "1".."5"


def decode(ids: list[int]) -> str:
    return "".join(VOCAB[i] for i in ids)


def test_digit_distribution_normalizes_and_reports_mass():
    top = {5: math.log(0.5), 8: math.log(0.25), 2: math.log(0.2), 9: math.log(0.05)}
    probs, mass = digit_distribution(top, DIGITS)
    assert mass == pytest.approx(0.8)
    assert probs == pytest.approx((0.0, 0.0, 0.25 / 0.8, 0.5 / 0.8, 0.05 / 0.8))
    assert sum(probs) == pytest.approx(1.0)
    assert digit_distribution({2: 0.0}, DIGITS) is None


def test_rating_read_at_the_token_after_the_last_header():
    tokens = [0, 1, 2, 3, 1, 4, 1, 5]
    top = [{t: -0.1} for t in tokens]
    top[7] = {5: math.log(0.6), 9: math.log(0.3), 2: math.log(0.1)}
    assert header_position(tokens, decode) == 7
    probs, mass = rating_from_logprobs(tokens, top, DIGITS, decode)
    assert mass == pytest.approx(0.9)
    assert probs == pytest.approx((0, 0, 0, 2 / 3, 1 / 3))


def test_header_split_over_tokens_and_the_last_one_wins():
    # "### Rating ###\n2\n### Rating ###\n5" with the second header in pieces
    tokens = [4, 1, 7, 1, 10, 11, 12, 9]
    assert header_position(tokens, decode) == 7
    top = [None] * 7 + [{9: math.log(0.5), 7: math.log(0.5)}]
    probs, _ = rating_from_logprobs(tokens, top, DIGITS, decode)
    assert probs == pytest.approx((0, 0.5, 0, 0, 0.5))


def test_no_position_when_header_missing_unfinished_or_off_boundary():
    assert header_position([0, 1, 2], decode) is None  # no rating header
    assert header_position([2, 1, 4, 1], decode) is None  # header is the last thing written
    assert header_position([2, 1, 4, 13, 5], decode) is None  # "### Rating ### 4": no newline after it
    assert rating_from_logprobs([0, 1, 2], [{}, {}, {}], DIGITS, decode) is None
    # logprobs shorter than the tokens (or missing at that position)
    assert rating_from_logprobs([4, 1, 5], [{}, {}], DIGITS, decode) is None
    assert rating_from_logprobs([4, 1, 5], [{}, {}, None], DIGITS, decode) is None


# ---- the engine ------------------------------------------------------------------------------
def test_missing_vllm_raises_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail as if not installed
    with pytest.raises(VLLMUnavailableError, match="vllm is not installed or cannot run here.*needs a CUDA GPU"):
        VLLMBackend("Qwen/Qwen2.5-0.5B-Instruct")
    assert issubclass(VLLMUnavailableError, ImportError)


def test_load_backend_routes_vllm_models_to_the_clear_error(monkeypatch):
    from recsaver.backends import BackendOptions, load_backend

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(VLLMUnavailableError):
        load_backend("vllm/some-model", BackendOptions(n_ctx=2048, extra={"regex_for_grammar": {"g": "[1-5]"}}))
