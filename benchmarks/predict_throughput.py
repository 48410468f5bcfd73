"""Throughput of `recsaver predict` against plain llama-cpp-python, as ratios measured in one run.

1. predict vs a raw loop: the same prompts, the same greedy parameters, through
   `run_predict` (fresh cache) and through a hand-written `Llama.create_chat_completion`
   loop. Ratio = raw seconds / predict seconds (goal >= 0.95).
2. n samples of one prompt: our backend (prompt evaluated once, then reused) vs
   n independent calls that each start cold (`llm.reset()`), as a separate client would.
   Ratio = independent seconds / ours (goal >= 3).

Run: .venv/bin/python benchmarks/predict_throughput.py [--model smollm2-135m] [--examples 4] [--samples 8]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from recsaver.backends.base import GenerationRequest, SamplingParams
from recsaver.backends.llamacpp import LlamaCppBackend
from recsaver.data.prepare import PrepareConfig, prepare
from recsaver.models import resolve_gguf
from recsaver.prompts import PromptBuilder
from recsaver.steps.predict import PredictConfig, load_split, run_predict

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def prepared_beauty(tmp: Path) -> Path:
    out = tmp / "beauty"
    prepare(SHARED / "amazon2023/All_Beauty/reviews.jsonl.gz", SHARED / "amazon2023/All_Beauty/meta.jsonl.gz", out,
            PrepareConfig(domain="beauty", train_per_label=20, test_per_label=4))
    return out


def bench_predict_vs_raw(model: str, data: Path, n: int, max_tokens: int, tmp: Path) -> dict:
    examples = load_split(data, "test", n)
    builder = PromptBuilder("beauty")
    from llama_cpp import Llama

    llm = Llama(model_path=str(resolve_gguf(model)), n_ctx=4096, verbose=False, seed=0)
    t = time.perf_counter()
    raw_tokens = 0
    for ex in examples:
        out = llm.create_chat_completion(messages=builder.messages(ex), max_tokens=max_tokens, temperature=0.0)
        raw_tokens += out["usage"]["completion_tokens"]
    raw_s = time.perf_counter() - t
    llm.close()

    cfg = PredictConfig(data=str(data), model=f"llamacpp/{model}", limit=n, max_tokens=max_tokens,
                        rating_probs=False, cache=str(tmp / "bench-cache.sqlite"))
    t = time.perf_counter()
    run_predict(cfg, tmp / "run")
    ours_s = time.perf_counter() - t
    return {"raw_s": round(raw_s, 2), "predict_s": round(ours_s, 2), "ratio": round(raw_s / ours_s, 3),
            "examples": n, "raw_completion_tokens": raw_tokens}


def bench_samples(model: str, data: Path, n_samples: int, max_tokens: int) -> dict:
    ex = load_split(data, "test", 1)[0]
    messages = PromptBuilder("beauty").messages(ex)
    params = SamplingParams(temperature=0.8, max_tokens=max_tokens, seed=0)
    backend = LlamaCppBackend(resolve_gguf(model), model_id=model)
    requests = [GenerationRequest.from_messages(messages, params=params, sample_index=i) for i in range(n_samples)]
    prompt_tokens = backend.count_tokens(requests[0])
    t = time.perf_counter()
    ours = backend.generate(requests)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    for r in requests:
        backend.llm.reset()  # what n separate calls cost: every call evaluates the prompt again
        backend.generate([r])
    independent_s = time.perf_counter() - t
    backend.close()
    return {"samples": n_samples, "prompt_tokens": prompt_tokens, "shared_prefix_s": round(ours_s, 2),
            "independent_s": round(independent_s, 2), "ratio": round(independent_s / ours_s, 2),
            "errors": sum(1 for g in ours if not g.ok)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--examples", type=int, default=4)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = prepared_beauty(tmp)
        raw = bench_predict_vs_raw(args.model, data, args.examples, args.max_tokens, tmp)
        samples = bench_samples(args.model, data, args.samples, args.max_tokens)
    print(f"model {args.model}")
    print(f"predict vs raw llama-cpp loop: raw {raw['raw_s']} s, predict {raw['predict_s']} s, "
          f"ratio {raw['ratio']} (goal >= 0.95) over {raw['examples']} examples")
    print(f"{samples['samples']} samples of a {samples['prompt_tokens']}-token prompt: shared prefix "
          f"{samples['shared_prefix_s']} s, independent {samples['independent_s']} s, ratio {samples['ratio']}x "
          "(goal >= 3)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": args.model, "predict_vs_raw": raw, "samples": samples}, indent=2))


if __name__ == "__main__":
    main()
