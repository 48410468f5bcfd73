"""Engines behind one interface; models are named `provider/model` and heavy imports stay lazy.

- `llamacpp/<builtin>` (smollm2-135m, qwen2.5-0.5b, qwen2.5-1.5b), `llamacpp/<file.gguf>`,
  `llamacpp/hf:<repo>/<file.gguf>`
- `openai/<model>` with one or more base URLs (vLLM, llama.cpp server, Ollama, hosted APIs)
- `hf/<checkpoint dir or hub id>` (transformers)
- `vllm/<model>` (in-process vLLM; needs a GPU)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import Backend, Generation, GenerationRequest, Message, Probe, ProbeRequest, SamplingParams

__all__ = ["Backend", "BackendOptions", "Generation", "GenerationRequest", "Message", "Probe", "ProbeRequest",
           "SamplingParams", "load_backend", "PROVIDERS"]

PROVIDERS = ("llamacpp", "openai", "hf", "vllm")


@dataclass(frozen=True)
class BackendOptions:
    n_ctx: int = 4096
    base_urls: tuple[str, ...] = ()
    concurrency: int = 4
    parallel: int = 8  # llamacpp: sequences decoded together
    balance: str = "round-robin"  # openai fleets: round-robin | least-busy
    lora_path: str | None = None
    # openai/... only: generate through the OpenAI Batch API (openai_compat/batch.py), its batch records in
    # batch_dir (None: beside the default cache). Never part of a cache key: a batch answers the same call.
    batch: bool = False
    batch_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def split_model(spec: str) -> tuple[str, str]:
    provider, sep, name = spec.partition("/")
    if not sep or not name or provider not in PROVIDERS:
        raise ValueError(f"model must be 'provider/model' with provider in {PROVIDERS}, got {spec!r} "
                         "(e.g. llamacpp/smollm2-135m)")
    return provider, name


def load_backend(spec: str, options: BackendOptions = BackendOptions()) -> Backend:
    provider, name = split_model(spec)
    if options.batch and provider != "openai":  # refused before any model is resolved or loaded
        raise ValueError(f"--batch needs an openai/... model (the OpenAI Batch API); {spec} cannot batch. Drop "
                         "--batch, or serve the model with vLLM and use openai/NAME --base-url URL --batch (or "
                         "vLLM's run-batch offline, README: Models and engines)")
    if provider == "llamacpp":
        from ..models import model_fingerprint, resolve_gguf
        from .llamacpp import LlamaCppBackend

        path = resolve_gguf(name)
        model_id = f"llamacpp/{name}@sha256:{model_fingerprint(path)[:16]}"
        if options.lora_path:
            from ..models import file_sha256

            model_id += f"+lora:{file_sha256(Path(options.lora_path))[:16]}"
        # RECSAVER_LLAMA_THREADS fixes the thread count; unset, the cores are shared between the llama.cpp
        # runs of this machine (backends/cpu_share.py).
        threads = int(os.environ["RECSAVER_LLAMA_THREADS"]) if os.environ.get("RECSAVER_LLAMA_THREADS") else None
        return LlamaCppBackend(path, model_id=model_id, n_ctx=options.n_ctx, lora_path=options.lora_path,
                               n_threads=threads, n_parallel=options.parallel)
    if provider == "openai":
        from .openai_compat import OpenAIBackend

        if not options.base_urls:
            raise ValueError("openai/... needs --base-url (one or more OpenAI-compatible servers)")
        batching: dict[str, Any] = {"batch": True, "batch_dir": options.batch_dir} if options.batch else {}
        return OpenAIBackend(name, list(options.base_urls), concurrency=options.concurrency,
                             balance=options.balance, context_length=options.n_ctx,
                             **{**batching, **options.extra})
    if provider == "hf":
        from .hf import HFBackend

        return HFBackend(name, context_length=options.n_ctx, **options.extra)
    from .vllm import VLLMBackend

    return VLLMBackend(name, context_length=options.n_ctx, **options.extra)
