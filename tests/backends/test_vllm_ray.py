"""`vllm/...` under `--executor ray` (backends/vllm_ray.py): our driver over Ray Data LLM.

vllm needs a CUDA GPU and does not install here, so Ray Data LLM's vLLM stage cannot run. What runs for real:
- Ray Data LLM builds its vLLM processor from the config we give it (the API we call exists and takes it);
- the whole driver (`VLLMBackend` logic, rows out, streamed rows back, rating read-outs, probes) over a real
  local Ray cluster and a real Ray Data pipeline, whose engine stage is SmolLM2 run by transformers in a Ray
  actor under the vLLM stage's row contract (token ids and SamplingParams in; generated tokens and per-token
  top logprobs out). Its greedy answers must equal the local `hf/...` backend's on the same prompts;
- the row plumbing (samples as rows with their own seeds, rows out of order, failed rows, lost rows) on
  hand-made rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recsaver.backends import BackendOptions
from recsaver.backends.base import GenerationRequest, ProbeRequest, SamplingParams
from recsaver.backends.vllm_ray import collect, ray_vllm_backend, request_rows, top_logprobs, vllm_processor

ray = pytest.importorskip("ray")


# ---- row plumbing (our logic, hand-made rows) ------------------------------------------------------
def test_samples_become_rows_with_their_own_seeds() -> None:
    rows = request_rows([[1, 2], [3]], [dict(n=3, temperature=0.7, max_tokens=8, seed=11, stop=None),
                                        dict(n=1, temperature=0.0, max_tokens=4, seed=5, logprobs=20)],
                        [[11, 12, 13], [5]])
    assert [(r["group"], r["output"], r["sampling_params"]["seed"]) for r in rows] == [
        (0, 0, 11), (0, 1, 12), (0, 2, 13), (1, 0, 5)]
    assert all(r["sampling_params"]["n"] == 1 for r in rows)
    assert "stop" not in rows[0]["sampling_params"]  # None values are left out, not sent as null
    assert rows[3]["sampling_params"]["logprobs"] == 20 and rows[3]["tokenized_prompt"] == [3]


def test_top_logprobs_in_every_shape_a_row_holds() -> None:
    assert top_logprobs({7: {"logprob": -0.5, "rank": 1}, 9: {"logprob": -2.0}}) == {7: -0.5, 9: -2.0}
    assert top_logprobs({"7": -0.5}) == {7: -0.5}  # keys as strings after Arrow
    assert top_logprobs([("7", {"logprob": -0.5}), ("8", None)]) == {7: -0.5}
    assert top_logprobs({7: {"logprob": float("nan")}}) == {}
    assert top_logprobs(None) is None


def test_rows_in_any_order_are_reported_per_prompt_and_failures_stay_failures() -> None:
    seen: dict[int, Any] = {}

    def done(k: int, outs: Any) -> None:
        assert k not in seen, f"prompt {k} reported twice"
        seen[k] = outs

    rows = [
        {"group": 0, "output": 1, "generated_tokens": [5, 6], "logprobs": None},
        {"group": 1, "output": 0, "__inference_error__": "CUDA out of memory"},
        {"group": 0, "output": 0, "generated_tokens": [4], "logprobs": [{4: {"logprob": -0.1}}]},
        {"group": 2, "output": 0, "generated_tokens": [1, 2, 3], "logprobs": None},
        {"group": 1, "output": 1, "generated_tokens": [9], "logprobs": None},  # after its prompt failed
    ]
    collect(rows, wanted=[2, 2, 2, 1], decode=lambda ids: "-".join(map(str, ids)), max_tokens=[8, 8, 8, 3],
            on_done=done)
    assert [c.text for c in seen[0]] == ["4", "5-6"]  # in output order, whatever the row order
    assert seen[0][0].logprobs == [{4: -0.1}] and seen[0][0].finish_reason == "stop"
    assert isinstance(seen[1], RuntimeError) and "CUDA out of memory" in str(seen[1])
    assert isinstance(seen[2], RuntimeError) and "returned 1 of 2 outputs" in str(seen[2])  # one row lost
    assert isinstance(seen[3], RuntimeError) and "returned 0 of 1" in str(seen[3])  # no row at all
    assert set(seen) == {0, 1, 2, 3}


def test_a_pipeline_error_fails_the_prompts_left_and_a_callers_error_is_raised(on_ray: Any) -> None:
    from recsaver.backends.vllm_ray import RayDataEngine  # on_ray: the Ray instance `ray.data.from_items` needs

    class Rows:  # what `processor(ds)` returns: rows, then the pipeline dies
        def iter_rows(self) -> Any:
            yield {"group": 0, "output": 0, "generated_tokens": [1], "logprobs": None}
            raise ConnectionError("node lost")

    seen: dict[int, Any] = {}
    engine = RayDataEngine(lambda ds: Rows(), decode=str)
    engine.run([[1], [2]], [{"n": 1, "max_tokens": 4}] * 2, [[0], [0]], lambda k, o: seen.__setitem__(k, o))
    assert [c.token_ids for c in seen[0]] == [[1]]
    assert isinstance(seen[1], RuntimeError) and "ConnectionError: node lost" in str(seen[1])

    def full_disk(k: int, outputs: Any) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        engine.run([[1]], [{"n": 1, "max_tokens": 4}], [[0]], full_disk)


# ---- a real Ray cluster and Ray Data pipeline ---------------------------------------------------------
@pytest.fixture(scope="module")
def smol_dir() -> Path:
    from recsaver.backends.hf.checkpoints import hf_checkpoint
    from recsaver.models import resolve_gguf

    return hf_checkpoint(resolve_gguf("smollm2-135m"))


def transformers_stage(model_dir: str) -> Any:
    """A Ray Data stage with the row contract of Ray Data LLM's vLLM stage, its engine SmolLM2 in transformers.
    Defined in a function so Ray ships the class by value to its workers."""

    class Engine:
        def __init__(self) -> None:
            import torch
            from transformers import AutoModelForCausalLM

            torch.set_num_threads(1)
            self.torch, self.model = torch, AutoModelForCausalLM.from_pretrained(model_dir).eval()

        def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
            torch, sp = self.torch, row["sampling_params"]
            cur, past, ids, tops = torch.tensor([list(row["tokenized_prompt"])]), None, [], []
            generator = torch.Generator().manual_seed(int(sp.get("seed", 0)))
            with torch.no_grad():
                for _ in range(int(sp["max_tokens"])):
                    out = self.model(cur, past_key_values=past, use_cache=True)
                    past, logits = out.past_key_values, out.logits[0, -1].float()
                    logp = torch.log_softmax(logits, -1)
                    if float(sp.get("temperature", 0)) > 0:
                        probs = torch.softmax(logits / float(sp["temperature"]), -1)
                        token = int(torch.multinomial(probs, 1, generator=generator))
                    else:
                        token = int(logp.argmax())
                    if sp.get("logprobs"):
                        values, top = logp.topk(int(sp["logprobs"]))
                        tops.append({int(t): {"logprob": float(v)} for t, v in zip(top, values)})
                    ids.append(token)
                    if token == self.model.config.eos_token_id:
                        break
                    cur = torch.tensor([[token]])
            return {"group": row["group"], "output": row["output"], "generated_tokens": ids,
                    "logprobs": tops or None}

    return lambda ds: ds.map(Engine, concurrency=1, num_cpus=1)


@pytest.fixture(scope="module")
def on_ray(smol_dir: Path) -> Iterator[Any]:
    backend = ray_vllm_backend(str(smol_dir), BackendOptions(n_ctx=2048), "local", 1,
                               processor=transformers_stage(str(smol_dir)))
    yield backend
    backend.close()
    assert not ray.is_initialized()  # it started the cluster, so it shut it down


def ask(text: str, **kwargs: Any) -> GenerationRequest:
    return GenerationRequest.from_messages([{"role": "user", "content": text}], **kwargs)


GREEDY = SamplingParams(temperature=0.0, max_tokens=12)
HOT = SamplingParams(temperature=1.0, max_tokens=8, seed=3)
RATE = "Rate this product from 1 to 5. Answer with the rating only, as 'Rating: N'."
# One engine run for most checks: each run of a Ray Data pipeline starts its engine actor (a model load).
REQUESTS = [ask("Name a fruit.", params=GREEDY), ask("What is 2 + 2?", params=GREEDY),
            ask("Name a fruit.", params=GREEDY, sample_index=3),
            ask(RATE, params=SamplingParams(temperature=0.0, max_tokens=8), rating_probs=True),
            *[ask("Say a word.", params=HOT, sample_index=i) for i in range(3)]]


@pytest.fixture(scope="module")
def answered(on_ray: Any) -> tuple[list[Any], list[int]]:
    streamed: list[int] = []
    return on_ray.generate(REQUESTS, on_result=lambda i, g: streamed.append(i)), streamed


@pytest.mark.slow
def test_greedy_answers_equal_the_local_hf_backend_and_stream_per_prompt(answered: Any, on_ray: Any,
                                                                         smol_dir: Path) -> None:
    from recsaver.backends.hf import HFBackend

    got, streamed = answered
    assert all(g.ok for g in got), [g.error for g in got]
    local = HFBackend(str(smol_dir), device="cpu", num_threads=1)
    try:
        want = local.generate(REQUESTS[:3])
    finally:
        local.close()
    assert [g.text for g in got[:3]] == [w.text for w in want]
    assert got[0].text == got[2].text  # greedy samples of one prompt share one answer
    assert sorted(streamed) == list(range(len(REQUESTS)))  # each reported once
    assert on_ray.model_id.startswith(f"vllm/{smol_dir}@sha256:")


@pytest.mark.slow
def test_rating_probs_and_probes_come_from_the_top_logprobs(answered: Any, on_ray: Any) -> None:
    rated = answered[0][3]
    assert rated.ok and rated.rating_probs is not None, rated
    assert math.isclose(sum(rated.rating_probs), 1.0, abs_tol=1e-9) and 0 < rated.digit_mass <= 1
    probe = on_ray.probe([ProbeRequest.from_request(ask(RATE), "Rating: ", ("1", "2", "3", "4", "5"))])[0]
    assert probe.ok and math.isclose(sum(probe.probs), 1.0, abs_tol=1e-9), probe


@pytest.mark.slow
def test_sampled_outputs_follow_their_own_seeds(answered: Any, on_ray: Any) -> None:
    first = answered[0][4:]
    again = on_ray.generate([ask("Say a word.", params=HOT, sample_index=i) for i in (2, 0)])
    assert [g.text for g in again] == [first[2].text, first[0].text]  # a sample's seed is its own
    assert len({g.text for g in first}) > 1


def test_ray_data_llm_builds_its_vllm_processor_from_our_config(on_ray: Any, smol_dir: Path) -> None:
    processor = vllm_processor(str(smol_dir), 2048, replicas=1, extra={"ray_batch_size": 8})
    config = processor.config
    assert config.concurrency == 1 and config.batch_size == 8 and config.should_continue_on_error
    assert not config.chat_template_stage and not config.tokenize_stage and not config.detokenize_stage
    assert config.engine_kwargs["max_logprobs"] == 20 and config.engine_kwargs["max_model_len"] == 2048



def test_a_cluster_without_gpus_is_refused_at_once(on_ray: Any, smol_dir: Path) -> None:
    with pytest.raises(ValueError, match="needs GPU nodes: the Ray cluster at local has 0 GPU"):
        ray_vllm_backend(str(smol_dir), BackendOptions(n_ctx=2048), "local", None)
