"""The llamacpp backend's batched engine (issue 17) on the calls recsaver's own steps make.

Each workload is recorded once by running the real step (`predict`, `references`, `distill sample`)
on real Beauty examples against a recording backend, then replayed three ways on the same model:

- batched: every recorded call as the step makes it, on a backend with `--parallel` sequences;
- sequential: the same calls on the same engine with `parallel=1` (one sequence at a time);
- before: the same calls on the backend as it was before issue 17 (its source is read from git at
  commit BEFORE: `Llama.create_completion` one request after another, with llama-cpp-python's
  prefix reuse), the issue's "today's sequential loop";
- cold: every request alone on that backend after forgetting all KV (independent calls).

Reported: wall time of each, the ratios (issue 17's goals: decode tokens/s with 8 sequences vs 1
>= 3x; predict >= 1.5x vs sequential; Rec-SAVER one example >= 4x vs cold; distill M=8 >= 8x vs cold),
whether batched and sequential outputs are identical, the decoder's prompt-chunk vs decode-step time,
and decode tokens/s per number of sequences. The load average is printed before and after.

Run: .venv/bin/python benchmarks/batched_engine.py [--model qwen2.5-0.5b] [--examples 16] [--tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsaver.backends import BackendOptions, load_backend
from recsaver.data.prepare import PrepareConfig, prepare
from recsaver.data.sources import FieldCaps

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "amazon2023" / "All_Beauty"
BEFORE = "c1e1deb"  # the last commit before the batched engine


def backend_before(model: str, n_ctx: int) -> Any:
    """The llamacpp backend of commit BEFORE, loaded from git into this process."""
    from recsaver.models import model_fingerprint, resolve_gguf

    source = subprocess.check_output(["git", "show", f"{BEFORE}:src/recsaver/backends/llamacpp.py"], cwd=REPO,
                                     text=True)
    module = types.ModuleType("recsaver.backends._before_issue17")
    module.__package__ = "recsaver.backends"
    exec(compile(source, f"llamacpp.py@{BEFORE}", "exec"), module.__dict__)
    name = model.split("/", 1)[1]
    path = resolve_gguf(name)
    return module.LlamaCppBackend(path, model_id=f"llamacpp/{name}@sha256:{model_fingerprint(path)[:16]}",
                                  n_ctx=n_ctx)


@dataclass
class Recorder:
    """Stands in for the backend while a step runs: answers through `inner`, keeps every call."""

    inner: Any
    calls: list[tuple[str, list[Any]]] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def generate(self, requests, on_result=None):
        self.calls.append(("generate", list(requests)))
        return self.inner.generate(requests, on_result=on_result)

    def probe(self, requests, on_result=None):
        self.calls.append(("probe", list(requests)))
        return self.inner.probe(requests, on_result=on_result)

    def close(self) -> None:  # the benchmark closes the real backend itself
        pass


def record(step: str, data: Path, model: str, backend: Any, work: Path, args: argparse.Namespace) -> list:
    import recsaver.steps.engine as engine
    from recsaver.config.schema import DistillSampleConfig, PredictConfig, ReferencesConfig

    rec = Recorder(backend)
    real = engine.load_backend
    engine.load_backend = lambda spec, options=None: rec  # type: ignore[assignment]
    try:
        cache = str(work / f"{step}.sqlite")
        if step == "predict":
            from recsaver.steps.predict import run_predict

            run_predict(PredictConfig(data=str(data), model=model, limit=args.examples, max_tokens=args.tokens,
                                      cache=cache), work / step)
        elif step == "references":
            from recsaver.steps.references import run_references

            run_references(ReferencesConfig(data=str(data), model=model, limit=1, samples=4,
                                            max_tokens=args.tokens, cache=cache), work / step)
        else:
            from recsaver.steps.distill import run_distill_sample

            run_distill_sample(DistillSampleConfig(data=str(data), model=model, limit=1, samples=8,
                                                   max_tokens=args.tokens, cache=cache), work / step)
    finally:
        engine.load_backend = real  # type: ignore[assignment]
    return rec.calls


def forget(backend: Any) -> None:
    if hasattr(backend, "decoder"):
        backend.decoder.reset()
    else:
        backend.llm.reset()  # the backend before issue 17: Llama's prefix cache
        backend.llm._ctx.kv_cache_clear()


def replay(backend: Any, calls: list, cold: bool = False) -> tuple[float, list]:
    forget(backend)
    outs: list = []
    started = time.perf_counter()
    for kind, requests in calls:
        for chunk in ([r] for r in requests) if cold else [requests]:
            if cold:
                forget(backend)
            outs.extend(getattr(backend, kind)(chunk))
    return time.perf_counter() - started, outs


def same(a: list, b: list) -> dict[str, Any]:
    """How far batched outputs agree with one-at-a-time outputs: texts, P(1..5) (or probe probs)."""
    import numpy as np

    def probs(o: Any) -> Any:
        return o.rating_probs if hasattr(o, "rating_probs") else o.probs

    texts = [x.text == y.text for x, y in zip(a, b) if hasattr(x, "text")]
    pairs = [(probs(x), probs(y)) for x, y in zip(a, b) if probs(x) is not None and probs(y) is not None]
    out: dict[str, Any] = {"n": len(a)}
    if texts:
        out["texts_identical"] = sum(texts)
    if pairs:
        out["probs_identical"] = sum(p == q for p, q in pairs)
        out["argmax_identical"] = sum(int(np.argmax(p)) == int(np.argmax(q)) for p, q in pairs)
        out["max_abs_prob_diff"] = float(max(np.abs(np.array(p) - np.array(q)).max() for p, q in pairs))
    return out


def per_batch_size(model: str, calls: list, sizes: list[int], n_ctx: int) -> dict[str, Any]:
    """Decode tokens/s of the predict requests with 1, 2, 4, 8... sequences."""
    requests = [r for kind, rs in calls if kind == "generate" for r in rs][: max(sizes)]
    out = {}
    for n in sizes:
        b = load_backend(model, BackendOptions(n_ctx=n_ctx, parallel=n))
        b.decoder.reset()
        t0 = time.perf_counter()
        gens = b.generate(requests)
        wall = time.perf_counter() - t0
        st = b.decoder.stats
        tokens = sum(g.completion_tokens for g in gens)
        single_s = st.decode_s - st.chunk_s
        out[str(n)] = {"wall_s": round(wall, 2), "completion_tokens": tokens,
                       "prompt_chunk_s": round(st.chunk_s, 2), "prompt_chunk_tokens": st.chunk_tokens,
                       "decode_step_s": round(single_s, 2), "decode_steps": st.single_steps,
                       "decode_tokens_per_s": round(tokens / single_s, 2) if single_s else None,
                       "ms_per_step": round(1000 * single_s / st.single_steps, 1) if st.single_steps else None}
        b.close()
    base = out[str(sizes[0])]["decode_tokens_per_s"]
    for v in out.values():
        v["ratio_vs_1"] = round(v["decode_tokens_per_s"] / base, 2) if base and v["decode_tokens_per_s"] else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-0.5b")
    ap.add_argument("--examples", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--steps", default="predict,references,distill")
    ap.add_argument("--sizes", default="1,2,4,8")
    ap.add_argument("--json", type=Path, default=None, help="default: results/batched_engine-MODEL.json")
    args = ap.parse_args()
    model = f"llamacpp/{args.model}"
    load_before = os.getloadavg()
    report: dict[str, Any] = {"model": model, "tokens": args.tokens, "parallel": args.parallel,
                              "load_before": load_before}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        caps = FieldCaps(title=80, description=200, review_title=60, review_text=300)
        prepare(SHARED / "reviews.jsonl.gz", SHARED / "meta.jsonl.gz", data,
                PrepareConfig(domain="beauty", train_per_label=4, test_per_label=4, caps=caps))
        batched = load_backend(model, BackendOptions(n_ctx=args.n_ctx, parallel=args.parallel))
        one = load_backend(model, BackendOptions(n_ctx=args.n_ctx, parallel=1))
        before = backend_before(model, args.n_ctx)
        for step in args.steps.split(","):
            calls = record(step, data, model, batched, work, args)
            if step == "predict":
                report["decode_per_sequences"] = per_batch_size(model, calls, [int(x) for x in args.sizes.split(",")],
                                                                args.n_ctx)
            row: dict[str, Any] = {"calls": len(calls), "requests": sum(len(c[1]) for c in calls)}
            batched.decoder.stats.__init__()
            row["batched_s"], b_out = replay(batched, calls)
            st = batched.decoder.stats
            row.update(prompt_chunk_s=round(st.chunk_s, 2), decode_step_s=round(st.decode_s - st.chunk_s, 2),
                       reused_prompt_tokens=st.reused_tokens, kv_copies=st.copies)
            row["sequential_s"], s_out = replay(one, calls)
            row["before_s"], o_out = replay(before, calls)
            row["agreement_batched_vs_sequential"] = same(b_out, s_out)
            row["agreement_sequential_vs_before"] = same(s_out, o_out)
            if step != "predict":
                row["cold_s"], _ = replay(before, calls, cold=True)
                row["ratio_vs_cold"] = round(row["cold_s"] / row["batched_s"], 2)
            row["ratio_vs_sequential"] = round(row["sequential_s"] / row["batched_s"], 2)
            row["ratio_vs_before"] = round(row["before_s"] / row["batched_s"], 2)
            for k in ("batched_s", "sequential_s", "before_s", "cold_s"):
                if k in row:
                    row[k] = round(row[k], 2)
            report[step] = row
            print(json.dumps({step: row}), flush=True)
        batched.close()
        one.close()
        before.close()
    report["load_after"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    path = args.json or Path(__file__).resolve().parent / "results" / f"batched_engine-{args.model}.json"
    path.write_text(text + "\n")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
