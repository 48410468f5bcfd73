"""Batched multi-sequence decoding (issue 17, `recsaver.backends.llama_batch`) vs one sequence at a time.

Ratios measured in one run, on one loaded model (Qwen2.5-0.5B by default):

1. Aggregate decode tokens/s: `--parallel` (8) different prompts decoded together in one
   `llama_batch` per step vs the same 8 prompts through the same engine with one sequence
   per step (and through `Llama.create_completion`, today's path). Goal >= 3x.
2. M samples of one prompt (temperature 0.8, seeds 0..M-1): batched (prompt evaluated once, KV
   copied to the M sequences) vs M sequential `create_completion` calls with llama-cpp-python's
   prefix reuse (today's backend) and vs M cold calls (KV cleared before each, as independent
   clients). Goal (issue 17, distill sample) >= 8x vs independent calls.

Tokens/s counts sampled tokens over wall time (prompt evaluation included). The load average is
printed before and after: another process on the cores slows every figure.

Run: .venv/bin/python benchmarks/batched_decode.py [--model qwen2.5-0.5b] [--tokens 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from recsaver.backends.cpu_share import available_cores
from recsaver.backends.llama_batch import BatchedDecoder, BatchRequest
from recsaver.models import require_model

TOPICS = ["a moisturizer for dry skin", "a sci-fi movie from the 1980s", "a stainless steel kettle",
          "a paperback fantasy novel", "wireless earbuds for running", "a vitamin C serum",
          "a board game for families", "a cast iron skillet", "a documentary about oceans", "a lip balm"]


def chat(llm, user: str) -> tuple[int, ...]:
    text = (f"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")
    return tuple(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))


def long_prompt(llm) -> tuple[int, ...]:
    history = "\n".join(f"- {t}: rated {1 + i % 5}/5, \"{'good value and works as described ' * 3}\""
                        for i, t in enumerate(TOPICS))
    return chat(llm, "A user reviewed these products:\n" + history +
                "\nExplain in a few sentences what this user values, then predict their rating of a "
                "new moisturizer.")


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def completion_tokens(out) -> int:
    return int(out["usage"]["completion_tokens"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-0.5b")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--threads", type=int, default=available_cores())
    args = ap.parse_args()
    from llama_cpp import Llama

    load_before = os.getloadavg()
    def load() -> Llama:
        return Llama(model_path=str(require_model(args.model)), n_ctx=4096, n_threads=args.threads,
                     n_threads_batch=args.threads, verbose=False, seed=0)

    llm, llm_many = load(), load()  # a decoder owns its context: one Llama each
    n, m, k = args.parallel, args.samples, args.tokens
    prompts = [chat(llm, f"Write a short review of {TOPICS[i % len(TOPICS)]}.") for i in range(n)]
    one = BatchedDecoder(llm, n_parallel=1)
    many = BatchedDecoder(llm_many, n_parallel=max(n, m))
    many.generate([BatchRequest(prompt=prompts[0], max_tokens=4)])  # warm-up

    # 1. aggregate decode throughput, greedy
    reqs = [BatchRequest(prompt=p, max_tokens=k) for p in prompts]
    seq_out, seq_s = timed(lambda: [llm.create_completion(prompt=list(p), max_tokens=k, temperature=0)
                                    for p in prompts])
    one.reset()
    one_out, one_s = timed(lambda: one.generate(reqs))
    llm.reset()
    many.stats.__init__()  # type: ignore[misc]
    bat_out, bat_s = timed(lambda: many.generate(reqs))
    seq_tok = sum(completion_tokens(o) for o in seq_out)
    one_tok = sum(len(r.tokens) for r in one_out)
    bat_tok = sum(len(r.tokens) for r in bat_out)
    greedy_same = sum(a.tokens == b.tokens for a, b in zip(one_out, bat_out))
    decode = {"create_completion_tok_s": seq_tok / seq_s, "engine_1_tok_s": one_tok / one_s,
              f"engine_{n}_tok_s": bat_tok / bat_s, "ratio_vs_1": (bat_tok / bat_s) / (one_tok / one_s),
              "ratio_vs_create_completion": (bat_tok / bat_s) / (seq_tok / seq_s),
              "batched_decode_s": many.stats.decode_s, "steps": many.stats.steps,
              "greedy_identical_1_vs_batched": f"{greedy_same}/{n}"}

    # 2. M samples of one prompt
    p = long_prompt(llm)
    sreqs = [BatchRequest(prompt=p, max_tokens=k, temperature=0.8, top_p=0.95, seed=s) for s in range(m)]

    def sequential(cold: bool) -> list:
        outs = []
        for s in range(m):
            if cold or s == 0:  # the prefix-reuse run evaluates the prompt once too, as the batched one does
                llm._ctx.kv_cache_clear()
                llm.reset()
            outs.append(llm.create_completion(prompt=list(p), max_tokens=k, temperature=0.8, top_p=0.95, seed=s))
        return outs

    cold_out, cold_s = timed(lambda: sequential(cold=True))
    warm_out, warm_s = timed(lambda: sequential(cold=False))
    many.stats.__init__()  # type: ignore[misc]
    many.reset()
    sam_out, sam_s = timed(lambda: many.generate(sreqs))
    samples = {"prompt_tokens": len(p), "cold_s": cold_s, "prefix_reuse_s": warm_s, "batched_s": sam_s,
               "tokens_cold": sum(completion_tokens(o) for o in cold_out),
               "tokens_prefix_reuse": sum(completion_tokens(o) for o in warm_out),
               "tokens_batched": sum(len(r.tokens) for r in sam_out),
               "ratio_vs_cold": cold_s / sam_s, "ratio_vs_prefix_reuse": warm_s / sam_s,
               "reused_prompt_tokens": many.stats.reused_tokens, "batched_evaluated_tokens": many.stats.batch_tokens,
               "distinct_samples": len({tuple(r.tokens) for r in sam_out})}
    print(json.dumps({"model": args.model, "threads": args.threads, "max_tokens": k,
                      "load_before": load_before, "load_after": os.getloadavg(),
                      "decode": decode, "samples": samples}, indent=2))
    llm.close()
    llm_many.close()


if __name__ == "__main__":
    main()
