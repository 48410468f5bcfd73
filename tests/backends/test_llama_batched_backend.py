"""The llamacpp backend's batched engine (issue 17) on real examples with the real SmolLM2-135M:
the same requests through `n_parallel=4` and `n_parallel=1` (one sequence at a time) give the same
answers, P(1..5) and probes, bit for bit; the grammar holds in every sequence of a batch; the M
samples of one prompt and the rating read-out after an answer reuse the evaluated prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsaver.backends import BackendOptions, load_backend
from recsaver.backends.base import Backend, GenerationRequest
from recsaver.config.schema import PredictConfig
from recsaver.prompts.parse import parse_answer
from recsaver.prompts.rating import rating_probe
from recsaver.steps.predict import build_requests, make_builder
from recsaver.store import load_split

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def backends() -> dict[int, Backend]:
    loaded = {n: load_backend("llamacpp/smollm2-135m", BackendOptions(n_ctx=2048, parallel=n)) for n in (1, 4)}
    yield loaded
    for b in loaded.values():
        b.close()


def real_requests(data: Path, backend: Backend, **kw: object) -> list[GenerationRequest]:
    cfg = PredictConfig(data=str(data), limit=4, **kw)  # type: ignore[arg-type]
    examples = load_split(data, "test", 4)
    return build_requests(cfg, make_builder(cfg, examples), examples, backend)[0]


def test_batched_greedy_cot_equals_one_at_a_time(small_beauty: Path, backends: dict[int, Backend]) -> None:
    reqs = real_requests(small_beauty, backends[1], method="cot", max_tokens=48)
    assert all(r.grammar and r.rating_probs for r in reqs)
    seen: list[int] = []
    batched = backends[4].generate(reqs, on_result=lambda i, g: seen.append(i))
    alone = backends[1].generate(reqs)
    assert sorted(seen) == list(range(len(reqs)))  # each result handed over (to the cache) as it finishes
    for b, a in zip(batched, alone):
        assert b.ok and a.ok, (b.error, a.error)
        assert (b.text, b.rating_probs, b.digit_mass, b.finish_reason) == \
               (a.text, a.rating_probs, a.digit_mass, a.finish_reason)
    # The rating read-out extended each answer's own sequence: its prompt was not evaluated again.
    decoder = backends[4].decoder  # type: ignore[attr-defined]
    assert decoder.stats.reused_tokens >= sum(b.prompt_tokens for b in batched)


def test_grammar_holds_in_every_sequence_of_a_batch(small_beauty: Path, backends: dict[int, Backend]) -> None:
    reqs = real_requests(small_beauty, backends[4], method="direct", samples=3, temperature=1.0, rating_probs=False)
    assert len(reqs) == 12
    out = backends[4].generate(reqs)
    for g in out:
        assert g.ok, g.error
        parsed = parse_answer(g.text, "direct")
        assert parsed.rating in (1, 2, 3, 4, 5), g.text
    # Seeded samples are the same batched or alone.
    assert [g.text for g in out] == [g.text for g in backends[1].generate(reqs)]


def test_samples_of_one_prompt_evaluate_it_once(small_beauty: Path, backends: dict[int, Backend]) -> None:
    reqs = real_requests(small_beauty, backends[4], method="cot", samples=4, temperature=0.8, max_tokens=24,
                         rating_probs=False)[:4]
    assert len({r.messages for r in reqs}) == 1
    decoder = backends[4].decoder  # type: ignore[attr-defined]
    before = decoder.stats.copies
    out = backends[4].generate(reqs)
    assert len({g.text for g in out}) > 1
    assert decoder.stats.copies - before == 3  # sample 0 evaluates the prompt; 1-3 copy its KV
    assert [g.text for g in out] == [g.text for g in backends[1].generate(reqs)]


def test_probes_batched_equal_alone(small_beauty: Path, backends: dict[int, Backend]) -> None:
    reqs = real_requests(small_beauty, backends[4], method="cot")
    probes = [rating_probe(r, text) for r in reqs for text in ("It looks fine.", "The user disliked it.")]
    # Where a probe starts evaluating depends on the prefixes already held (as in llama-cpp-python's
    # own prefix cache), and that moves chunk boundaries and float sums; start both engines cold.
    for b in backends.values():
        b.decoder.reset()  # type: ignore[attr-defined]
    batched, alone = backends[4].probe(probes), backends[1].probe(probes)
    assert all(p.ok for p in batched)
    assert [p.probs for p in batched] == [p.probs for p in alone]
    assert len({p.probs for p in batched}) == len(probes)
