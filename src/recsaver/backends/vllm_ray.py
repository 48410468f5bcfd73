"""`vllm/...` under `--executor ray`: vLLM replicas on a Ray cluster through Ray Data LLM (`ray.data.llm`).

Why Ray Data here and Ray core actors for every other model (backends/ray_pool.py): `ray.data.llm` is Ray's
own vLLM batch engine. Its vLLM stage keeps each replica's continuous batching full, places tensor/pipeline
parallel replicas on the cluster's GPUs, and restarts a replica that dies. A hand-written actor around
`vllm.LLM` would redo that, worse. The driver keeps everything else exactly as for a local `vllm/...` run
(`backends/vllm.VLLMBackend`): the chat template, the token ids, sample grouping, the rating read-out and
the probes run here, and only the engine call goes to the cluster.

- Prompts go as token ids (``tokenized_prompt``); Ray's chat-template, tokenize and detokenize stages are
  off, so the replicas see the very tokens a local run would, and the text is decoded here.
- Results stream back with `iter_rows`: each prompt is reported (and so cached) as soon as its outputs are
  in, so kill -9 and resume behave as locally; the driver stays the single writer of the cache and the run.
- Ray Data's vLLM stage returns one output per row, so a prompt's M samples become M rows, each with the
  seed its sample has in every backend (`GenerationRequest.sample_seed`). Samples are therefore not the
  ones a local ``n=M`` call draws; greedy answers are the same.
- A row the engine fails (``should_continue_on_error``) comes back with ``__inference_error__`` and is
  recorded as that request's error, never as an answer.
- Each `generate`/`probe` call is one pipeline run, and a pipeline run starts its replicas (loads the
  model): a step pays this once for its answers, plus once for the probes or read-outs it needs.
- Ray's `finish_reason` is not in its output rows: "length" when the output used every token allowed,
  else "stop".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import BackendOptions
from .vllm import VLLMBackend
from .vllm_engine import TOP_LOGPROBS, Completion, OnGroup

ProcessorFn = Callable[[Any], Any]  # a Ray Dataset of request rows -> the Dataset of answered rows


def top_logprobs(entry: Any) -> dict[int, float] | None:
    """One generated token's top logprobs (token id -> logprob) as a Ray Data row holds them: a dict keyed by
    id (int, or str after a round trip through Arrow), its values a float or ``{"logprob": ...}``."""
    if entry is None:
        return None
    items = entry.items() if hasattr(entry, "items") else entry
    out: dict[int, float] = {}
    for key, value in items:
        if value is None:
            continue
        lp = value.get("logprob") if hasattr(value, "get") else value
        if lp is not None and not (isinstance(lp, float) and math.isnan(lp)):
            out[int(key)] = float(lp)
    return out


def request_rows(prompts: Sequence[list[int]], params: Sequence[dict[str, Any]], seeds: Sequence[list[int]]
                 ) -> list[dict[str, Any]]:
    """One Ray Data row per output: prompt k's ``n`` outputs become n rows with n=1 and their own seeds."""
    rows = []
    for k, (ids, kwargs) in enumerate(zip(prompts, params)):
        n = int(kwargs.get("n", 1))
        for j in range(n):
            sampling = {key: v for key, v in kwargs.items() if v is not None}
            sampling.update(n=1, seed=int(seeds[k][j]))
            rows.append({"group": k, "output": j, "tokenized_prompt": list(ids), "sampling_params": sampling})
    return rows


def collect(rows: Iterable[dict[str, Any]], wanted: Sequence[int], decode: Callable[[list[int]], str],
            max_tokens: Sequence[int], on_done: OnGroup) -> None:
    """Answered rows, in whatever order they come, into one `on_done` per prompt as soon as its last output is
    in; `wanted[k]` outputs are expected of prompt k. Prompts with outputs missing at the end are failed."""
    got: dict[int, dict[int, Completion]] = {}
    finished: set[int] = set()
    for row in rows:
        k, j = int(row["group"]), int(row["output"])
        if k in finished:
            continue
        error = row.get("__inference_error__")
        if error:
            finished.add(k)
            got.pop(k, None)
            on_done(k, RuntimeError(f"vLLM on Ray failed this request: {error}"))
            continue
        tokens = row.get("generated_tokens")
        ids = [int(t) for t in (tokens if tokens is not None else [])]
        logprobs = row.get("logprobs")
        got.setdefault(k, {})[j] = Completion(
            text=decode(ids), token_ids=ids,
            logprobs=[top_logprobs(e) for e in logprobs] if logprobs is not None else None,
            finish_reason="length" if len(ids) >= max_tokens[k] else "stop")
        if len(got[k]) == wanted[k]:
            finished.add(k)
            outs = got.pop(k)
            on_done(k, [outs[x] for x in sorted(outs)])
    for k in range(len(wanted)):  # outputs that never came back: errors, never answers
        if k not in finished:
            on_done(k, RuntimeError(f"vLLM on Ray returned {len(got.get(k, {}))} of {wanted[k]} outputs"))


class _CallerError(Exception):
    """Carries an exception raised by `on_done` out of the pipeline loop, apart from the pipeline's own."""


class RayDataEngine:
    """The `backends/vllm.Engine` contract over a Ray Data LLM processor (see the module docstring)."""

    def __init__(self, processor: ProcessorFn, decode: Callable[[list[int]], str], owns_connection: bool = False):
        self.processor, self.decode, self.owns_connection = processor, decode, owns_connection

    def run(self, prompts: Sequence[list[int]], params: Sequence[dict[str, Any]], seeds: Sequence[list[int]],
            on_done: OnGroup) -> None:
        if not prompts:
            return
        import ray.data

        rows = request_rows(prompts, params, seeds)
        seen: set[int] = set()

        def once(k: int, outputs: list[Completion] | Exception) -> None:
            seen.add(k)
            try:
                on_done(k, outputs)
            except Exception as e:  # the caller's error (e.g. its cache): raised as it is, never charged to vLLM
                raise _CallerError() from e

        try:
            answered = self.processor(ray.data.from_items(rows)).iter_rows()
            collect(answered, [int(p.get("n", 1)) for p in params], self.decode,
                    [int(p.get("max_tokens") or 0) or 1 << 30 for p in params], once)
        except _CallerError as e:
            raise e.__cause__ from None  # type: ignore[misc]
        except Exception as e:  # the pipeline itself failed: every prompt not yet reported fails with it
            for k in range(len(prompts)):
                if k not in seen:
                    on_done(k, RuntimeError(f"vLLM on Ray: {type(e).__name__}: {e}"))

    def close(self) -> None:
        if self.owns_connection:
            import ray

            ray.shutdown()
            self.owns_connection = False


def vllm_processor(model: str, context_length: int, replicas: int, extra: dict[str, Any]) -> ProcessorFn:
    """Ray Data LLM's vLLM processor for our rows: token ids in, tokens and top logprobs out, errors kept. Each
    replica takes `tensor_parallel_size` GPUs, placed by Ray Data LLM itself (so `--ray-gpus` does not apply)."""
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    engine_kwargs = dict(max_model_len=context_length, enable_prefix_caching=True, max_logprobs=TOP_LOGPROBS,
                         tensor_parallel_size=int(extra.get("tensor_parallel_size", 1)),
                         gpu_memory_utilization=float(extra.get("gpu_memory_utilization", 0.9)))
    config = vLLMEngineProcessorConfig(
        model_source=model, engine_kwargs=engine_kwargs, concurrency=replicas,
        batch_size=int(extra.get("ray_batch_size", 64)), chat_template_stage=False, tokenize_stage=False,
        detokenize_stage=False, should_continue_on_error=True, log_engine_metrics=False,
        **({"accelerator_type": extra["accelerator_type"]} if extra.get("accelerator_type") else {}))
    return build_processor(config)


def ray_vllm_backend(model: str, options: BackendOptions, address: str, replicas: int | None,
                     processor: ProcessorFn | None = None) -> VLLMBackend:
    """A `VLLMBackend` whose engine is vLLM on the Ray cluster at `address` (`--executor ray`), its tokenizer
    loaded here. `processor` replaces Ray Data LLM's vLLM stage (tests: a stage of the same row contract)."""
    from transformers import AutoTokenizer

    from .ray_pool import connect

    extra = dict(options.extra)
    owns = connect(address)
    try:
        if processor is None:
            import ray

            per = max(1, int(extra.get("tensor_parallel_size", 1)))
            fit = int(ray.cluster_resources().get("GPU", 0) // per)
            if fit < 1:  # Ray Data would wait for a GPU node forever: say so now
                raise ValueError(f"vllm/{model} under --executor ray needs GPU nodes: the Ray cluster at {address} "
                                 f"has {ray.cluster_resources().get('GPU', 0):g} GPU(s) for replicas of {per}. Use "
                                 "llamacpp/... or hf/... on CPU nodes")
            processor = vllm_processor(model, options.n_ctx, replicas or fit, extra)
        tokenizer = AutoTokenizer.from_pretrained(model)
    except Exception:
        if owns:
            import ray

            ray.shutdown()
        raise
    engine = RayDataEngine(processor, lambda ids: str(tokenizer.decode(ids, skip_special_tokens=True)), owns)
    return VLLMBackend(model, context_length=options.n_ctx,
                       regex_for_grammar=extra.get("regex_for_grammar"), engine=engine, tokenizer=tokenizer)
