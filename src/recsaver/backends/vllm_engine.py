"""The engines under `backends/vllm.VLLMBackend`: one contract (`Engine.run`: token-id prompts and SamplingParams
kwargs in, `Completion`s out, each prompt reported as it finishes), run by `vllm.LLM` in this process
(`InProcessEngine`) or by Ray Data LLM on a cluster (`backends/vllm_ray.RayDataEngine`).

vllm is imported only when an in-process engine is made; it needs a CUDA GPU (it does not import on CPU-only
machines here), so a clear `VLLMUnavailableError` is raised where it is missing.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

TOP_LOGPROBS = 20


class VLLMUnavailableError(ImportError):
    """vllm cannot be imported here (not installed, or no usable GPU)."""


@dataclass
class Completion:
    """One output of an engine call: the text, its token ids, and (when asked) each token's top logprobs."""

    text: str
    token_ids: list[int]
    logprobs: list[dict[int, float] | None] | None = None
    finish_reason: str | None = None


OnGroup = Callable[[int, "list[Completion] | Exception"], None]


class Engine(Protocol):
    def run(self, prompts: Sequence[list[int]], params: Sequence[dict[str, Any]], seeds: Sequence[list[int]],
            on_done: OnGroup) -> None:
        """Run prompt k with SamplingParams kwargs `params[k]` (``n`` outputs; `seeds[k]` is each output's own
        seed, for engines that run the outputs one by one) and call `on_done(k, outputs or the error)` once per
        prompt, as each finishes."""

    def close(self) -> None: ...


def import_vllm() -> Any:
    try:
        import vllm  # heavy, GPU-only: imported only when this backend is chosen

        return vllm
    except Exception as e:  # ImportError, or a CUDA/driver error raised while importing
        raise VLLMUnavailableError(
            f"vllm is not installed or cannot run here (it needs a CUDA GPU): {type(e).__name__}: {e}. "
            "Install vllm on a GPU machine, or use hf/... (transformers) or llamacpp/... instead") from e


def sampling_params(vllm: Any, kwargs: dict[str, Any]) -> Any:
    """`vllm.SamplingParams` of our kwargs (a ``structured_outputs`` dict becomes vLLM's regex constraint)."""
    kwargs = dict(kwargs)
    constraint = kwargs.pop("structured_outputs", None)
    return vllm.SamplingParams(**kwargs, **(_structured_regex(constraint["regex"]) if constraint else {}))


class InProcessEngine:
    """`vllm.LLM` in this process: every prompt in one `generate` call (vLLM batches them itself)."""

    def __init__(self, model: str, context_length: int, tensor_parallel_size: int, gpu_memory_utilization: float,
                 enable_prefix_caching: bool):
        self.vllm = import_vllm()
        self.llm = self.vllm.LLM(model=model, max_model_len=context_length, tensor_parallel_size=tensor_parallel_size,
                                 gpu_memory_utilization=gpu_memory_utilization,
                                 enable_prefix_caching=enable_prefix_caching, max_logprobs=TOP_LOGPROBS)

    def _generate(self, prompts: Sequence[list[int]], params: Sequence[dict[str, Any]]) -> list[list[Completion]]:
        outs = self.llm.generate([{"prompt_token_ids": p} for p in prompts],
                                 [sampling_params(self.vllm, kw) for kw in params], use_tqdm=False)
        return [[Completion(text=c.text, token_ids=list(c.token_ids), finish_reason=c.finish_reason,
                            logprobs=[{k: v.logprob for k, v in d.items()} if d else None for d in c.logprobs]
                            if c.logprobs is not None else None) for c in o.outputs] for o in outs]

    def run(self, prompts: Sequence[list[int]], params: Sequence[dict[str, Any]], seeds: Sequence[list[int]],
            on_done: OnGroup) -> None:
        if not prompts:
            return
        try:
            outputs: list[list[Completion] | Exception] = list(self._generate(prompts, params))
        except Exception:  # one bad request fails vLLM's whole call: retry prompt by prompt to charge it
            outputs = []
            for k in range(len(prompts)):
                try:
                    outputs.append(self._generate([prompts[k]], [params[k]])[0])
                except Exception as e:
                    outputs.append(e)
        for k, out in enumerate(outputs):  # outside the try: an error of the caller's is the caller's
            on_done(k, out)

    def close(self) -> None:
        self.llm = None
        gc.collect()
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:
            pass


def _structured_regex(regex: str) -> dict[str, Any]:
    """SamplingParams kwargs constraining output to `regex`, for new (structured outputs) and old vLLM."""
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(regex=regex)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(regex=regex)}
