"""BatchedDecoder (issue 17) on the real SmolLM2-135M: greedy parity with create_completion, seeded
samples of one shared prompt, grammar per sequence, continuous batching, follow-ups and probes.

Each test loads its own Llama: the decoder rebuilds the context for its number of sequences."""

from __future__ import annotations

import re

import numpy as np
import pytest

llama_cpp = pytest.importorskip("llama_cpp")

from recsaver.backends.llama_batch import BatchedDecoder, BatchRequest  # noqa: E402
from recsaver.prompts.grammar import rating_grammar  # noqa: E402

PROMPTS = [
    "The capital of France is",
    "Once upon a time",
    "def fib(n):",
    "Rating of this movie: ",
]


@pytest.fixture()
def llm():
    from recsaver.models import require_model

    # One thread: llama.cpp's workers spin while they wait, so two threads on a machine whose other
    # core is busy (other test workers) thrash (cpu_share); this file tests results, not speed.
    model = llama_cpp.Llama(model_path=str(require_model("smollm2-135m")), n_ctx=4096, n_threads=1,
                            n_threads_batch=1, verbose=False, seed=0)
    yield model
    model.close()


def _tokens(llm, text: str) -> tuple[int, ...]:
    return tuple(llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))


def _sequential(llm, prompt: tuple[int, ...], **kw) -> str:
    out = llm.create_completion(prompt=list(prompt), **kw)
    return out["choices"][0]["text"]


def test_greedy_matches_create_completion(llm):
    prompts = [_tokens(llm, p) for p in PROMPTS]
    expected = [_sequential(llm, p, max_tokens=24, temperature=0) for p in prompts]
    # One sequence per step: the same kernels as create_completion, so the same tokens exactly.
    one = BatchedDecoder(llm, n_parallel=1).generate([BatchRequest(prompt=p, max_tokens=24) for p in prompts])
    assert [r.text for r in one] == expected
    assert all(r.finish_reason == "length" and len(r.tokens) == 24 for r in one)
    # Four sequences per step, one KV stream each, prompt chunks alone: the same tokens exactly.
    four = BatchedDecoder(llm, n_parallel=4).generate([BatchRequest(prompt=p, max_tokens=24) for p in prompts])
    assert [r.tokens for r in four] == [r.tokens for r in one]


def test_samples_of_one_prompt_share_it_differ_and_repeat(llm):
    # Longer than MIN_COPY: a shorter shared prefix is evaluated again rather than copied.
    prompt = _tokens(llm, "Once upon a time, in a small village by the sea, there lived an old fisherman who "
                          "every morning walked down to the harbour, greeted the gulls and the baker's children, "
                          "and pushed his little blue boat into the cold grey water,")
    dec = BatchedDecoder(llm, n_parallel=4)
    reqs = [BatchRequest(prompt=prompt, max_tokens=20, temperature=0.8, top_p=0.95, seed=s) for s in range(4)]
    first = dec.generate(reqs)
    dec.reset()
    again = dec.generate(reqs)
    texts = [r.text for r in first]
    assert all(r.error is None and r.tokens for r in first)
    assert len(set(texts)) == 4, texts
    assert texts == [r.text for r in again]
    # The prompt was evaluated once: the 3 other samples copied all of it but its last token.
    assert sorted(r.reused_tokens for r in first) == [0] + [len(prompt) - 1] * 3
    # Alone, a sample is exactly create_completion's with the same seed (same sampler chain).
    alone = BatchedDecoder(llm, n_parallel=1).generate(reqs[1:2])[0]
    assert alone.text == _sequential(llm, prompt, max_tokens=20, temperature=0.8, top_p=0.95, seed=1)


def test_grammar_holds_in_every_sequence(llm):
    grammar = rating_grammar("direct")
    prompts = [_tokens(llm, p) for p in PROMPTS]
    reqs = [BatchRequest(prompt=p, max_tokens=16, temperature=0.8, seed=s, grammar=grammar)
            for s, p in enumerate(prompts)]
    reqs += [BatchRequest(prompt=prompts[0], max_tokens=16, grammar=grammar)]  # greedy beside sampled
    out = BatchedDecoder(llm, n_parallel=4).generate(reqs)
    for r in out:
        assert r.error is None
        assert re.fullmatch(r"### Rating ###\n[1-5]", r.text), r.text
        assert r.finish_reason == "stop"
    bad = BatchedDecoder(llm, n_parallel=2).generate([BatchRequest(prompt=prompts[0], max_tokens=4,
                                                                   grammar="root ::= oops")])
    assert bad[0].error is not None


def test_continuous_batching_probes_and_stops(llm):
    prompts = [_tokens(llm, p) for p in PROMPTS]
    reqs = [BatchRequest(prompt=p, max_tokens=n) for p, n in zip(prompts * 2, [3, 9, 5, 12, 1, 7, 2, 4])]
    seen: list[int] = []
    dec = BatchedDecoder(llm, n_parallel=2)
    out = dec.generate(reqs, on_result=lambda i, r: seen.append(i))
    assert max(len(s.kv) for s in dec.slots) > 0  # slots keep their KV for the next call
    assert sorted(seen) == list(range(len(reqs)))
    assert [len(r.tokens) for r in out] == [r.max_tokens for r in reqs]
    # A repeated prompt reuses the KV of the slot that decoded it before (all but its last token).
    assert dec.stats.reused_tokens > 0
    # Probe: next-token logits after the prompt, nothing sampled; the argmax is the greedy token.
    probe = dec.generate([BatchRequest(prompt=prompts[0], max_tokens=0, logits=True),
                          BatchRequest(prompt=prompts[0], max_tokens=1)])
    assert probe[0].logits is not None and probe[0].logits.shape == (llm.n_vocab(),)
    assert int(np.argmax(probe[0].logits)) == probe[1].tokens[0]
    # Stop token ids and stop strings end a sequence with finish_reason "stop".
    first = out[0].tokens[0]
    stopped = dec.generate([BatchRequest(prompt=prompts[0], max_tokens=9, stop_ids=(first,)),
                            BatchRequest(prompt=prompts[0], max_tokens=24, stop=("States",))])
    assert stopped[0].tokens == [] and stopped[0].finish_reason == "stop"
    assert stopped[1].finish_reason == "stop" and "States" not in stopped[1].text
    too_long = dec.generate([BatchRequest(prompt=prompts[0], max_tokens=10_000)])
    assert too_long[0].error is not None
    with pytest.raises(ValueError, match="parallel must be >= 1"):
        BatchedDecoder(llm, n_parallel=0)


def test_follow_up_extends_the_answers_own_sequence(llm):
    """A request submitted at the front from a result's callback (the rating read-out after an
    answer) takes the answer's slot: only its new tokens are evaluated."""
    prompts = [_tokens(llm, p) for p in PROMPTS]
    follow = tuple(llm.tokenize(b" Rating: ", add_bos=False))
    dec = BatchedDecoder(llm, n_parallel=2)
    got: dict[object, object] = {}

    def answered(i: int):
        def done(res):
            got[i] = res
            dec.submit(BatchRequest(prompt=prompts[i] + tuple(res.tokens) + follow, max_tokens=0, logits=True),
                       lambda r: got.__setitem__(("probe", i), r), front=True)
        return done

    for i, p in enumerate(prompts):
        dec.submit(BatchRequest(prompt=p, max_tokens=6), answered(i))
    dec.run()
    for i, p in enumerate(prompts):
        answer, probe = got[i], got[("probe", i)]
        assert probe.logits is not None and probe.error is None
        # The answer's KV holds its prompt and every answer token but the last (sampled, never evaluated).
        assert probe.reused_tokens == len(p) + len(answer.tokens) - 1


def test_greedy_under_a_grammar_equals_the_grammar_chain(llm):
    """Greedy decoding checks the grammar on the argmax first (llama_setup.SeqSampler); the tokens are
    those of create_completion's chain, which applies the grammar to the whole vocabulary each step."""
    from llama_cpp import LlamaGrammar

    grammars = [rating_grammar("cot", max_lines=3, max_line_chars=None), rating_grammar("direct")] * 2
    prompts = [_tokens(llm, p) for p in PROMPTS]
    expected = [_sequential(llm, p, max_tokens=40, temperature=0, grammar=LlamaGrammar.from_string(g, verbose=False))
                for p, g in zip(prompts, grammars)]
    out = BatchedDecoder(llm, n_parallel=4).generate([BatchRequest(prompt=p, max_tokens=40, grammar=g)
                                                      for p, g in zip(prompts, grammars)])
    assert [r.text for r in out] == expected
    assert all(t.startswith("### Reason") for t in expected[::2])
    assert all(re.fullmatch(r"### Rating ###\n[1-5]", t) for t in expected[1::2])  # forced: not the model's pick
