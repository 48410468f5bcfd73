"""What the portable llama.cpp build costs against a -march=native build, as ratios measured in one run.

scripts/install_llama.sh builds for x86-64-v3 (AVX2/FMA/F16C/BMI2; no AVX-512, no AMX) so one install
runs on any such machine. This measures, on a machine where every build runs, prompt evaluation and
generation speed of the portable build, the `host` build (portable + this CPU's AVX-512/AVX-VNNI, AMX
off) and a -march=native build, alternating rounds, best round of each:
  ratio = portable tokens/s / native (or host) tokens/s (1.0 = no cost).
The host and native builds are built once by `LLAMA_BUILD=host|native scripts/install_llama.sh` into
benchmarks/.host-llama and benchmarks/.native-llama (ignored by git) and loaded by a child process.

Run: .venv/bin/python benchmarks/llama_build.py [--model smollm2-135m] [--rounds 3] [--tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARGETS = {"host": HERE / ".host-llama", "native": HERE / ".native-llama"}

# Runs in the child: one prompt evaluated from scratch, then `tokens` greedy tokens generated from it.
CHILD = r"""
import json, sys, time
import llama_cpp
from llama_cpp import Llama
path, prompt_file, tokens = sys.argv[1], sys.argv[2], int(sys.argv[3])
llm = Llama(model_path=path, n_ctx=4096, n_threads=2, n_threads_batch=2, verbose=False, seed=0)
ids = llm.tokenize(open(prompt_file, encoding="utf-8").read().encode(), add_bos=True, special=True)
llm.reset(); t = time.perf_counter(); llm.eval(ids); prompt_s = time.perf_counter() - t
t = time.perf_counter(); n = 0
for tok in llm.generate(ids, temp=0.0):
    n += 1
    if n == tokens:
        break
gen_s = time.perf_counter() - t
print(json.dumps({"system_info": llama_cpp.llama_print_system_info().decode(), "prompt_tokens": len(ids),
                  "prompt_tok_s": len(ids) / prompt_s, "gen_tokens": n, "gen_tok_s": n / gen_s}))
llm.close()
"""


def ensure_builds() -> None:
    for build, target in TARGETS.items():
        if not (target / "llama_cpp").is_dir():
            pip = Path(sys.executable).with_name("pip")
            subprocess.run(["bash", str(REPO / "scripts/install_llama.sh"), str(pip), "--target", str(target)],
                           env={**os.environ, "LLAMA_BUILD": build}, check=True)


def measure(build: str, model: Path, prompt: Path, tokens: int) -> dict:
    env = dict(os.environ)
    if build in TARGETS:
        env["PYTHONPATH"] = str(TARGETS[build]) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", CHILD, str(model), str(prompt), str(tokens)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def real_prompt(tmp: Path) -> Path:
    from recsaver.data.prepare import PrepareConfig, prepare
    from recsaver.prompts import PromptBuilder
    from recsaver.steps.predict import load_split

    shared = REPO.parent / "shared" / "data" / "amazon2023" / "All_Beauty"
    prepare(shared / "reviews.jsonl.gz", shared / "meta.jsonl.gz", tmp / "data",
            PrepareConfig(domain="beauty", train_per_label=4, test_per_label=2))
    example = load_split(tmp / "data", "test", 1)[0]
    path = tmp / "prompt.txt"
    path.write_text("\n\n".join(m["content"] for m in PromptBuilder("beauty").messages(example)), encoding="utf-8")
    return path


def main() -> None:
    from recsaver.models import require_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--json", type=Path, default=None, help="default: results/llama_build-MODEL.json")
    args = ap.parse_args()
    ensure_builds()
    model = require_model(args.model)
    with tempfile.TemporaryDirectory() as tmp_name:
        prompt = real_prompt(Path(tmp_name))
        rounds: dict[str, list[dict]] = {"portable": [], "host": [], "native": []}
        for _ in range(args.rounds):
            for build in rounds:
                rounds[build].append(measure(build, model, prompt, args.tokens))
    best = {b: {"prompt_tok_s": max(r["prompt_tok_s"] for r in rs), "gen_tok_s": max(r["gen_tok_s"] for r in rs),
                "system_info": rs[0]["system_info"].strip()} for b, rs in rounds.items()}
    result = {
        "model": args.model, "prompt_tokens": rounds["portable"][0]["prompt_tokens"], "gen_tokens": args.tokens,
        "rounds": args.rounds, "load_average": os.getloadavg(), "best": best,
        "ratio_prompt": round(best["portable"]["prompt_tok_s"] / best["native"]["prompt_tok_s"], 3),
        "ratio_generation": round(best["portable"]["gen_tok_s"] / best["native"]["gen_tok_s"], 3),
        "ratio_prompt_vs_host": round(best["portable"]["prompt_tok_s"] / best["host"]["prompt_tok_s"], 3),
        "ratio_generation_vs_host": round(best["portable"]["gen_tok_s"] / best["host"]["gen_tok_s"], 3),
    }
    for build, b in best.items():
        print(f"{build:>8}: prompt {b['prompt_tok_s']:.1f} tok/s, generation {b['gen_tok_s']:.1f} tok/s "
              f"({b['system_info']})")
    print(f"portable / native: prompt {result['ratio_prompt']}, generation {result['ratio_generation']}; "
          f"portable / host: prompt {result['ratio_prompt_vs_host']}, generation "
          f"{result['ratio_generation_vs_host']} (1.0 = no cost; load average {result['load_average'][0]:.2f})")
    target = args.json or HERE / "results" / f"llama_build-{args.model}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
