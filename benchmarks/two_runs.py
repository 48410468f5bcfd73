"""Two `recsaver predict` runs at once on one machine, against one run, as ratios measured in one run.

(a) Same examples, same cache: the second run claims nothing the first is computing and waits for it.
    ratio = wall of both together / wall of one alone (goal <= 1.2: the pair costs about one run).
(b) Different examples (test and train splits), same cache: no shared work, so the cores are shared
    (backends/cpu_share.py, 1 thread each on 2 cores).
    ratio = wall of both together / wall of the two one after the other (goal <= 1.05: no thrash).
    For comparison the same pair with a fixed 2 threads each (RECSAVER_LLAMA_THREADS=2, what every
    run did before the sharing).

Run: .venv/bin/python benchmarks/two_runs.py [--examples 4] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "amazon2023" / "All_Beauty"


def cmd(data: Path, split: str, cache: Path, out: Path, n: int, max_tokens: int) -> list[str]:
    return [sys.executable, "-m", "recsaver.cli", "predict", "--data", str(data), "--split", split, "--limit", str(n),
            "--method", "cot", "--grammar", "--max-tokens", str(max_tokens), "--cache", str(cache), "--out", str(out),
            "--no-progress"]


def together(cmds: list[list[str]], env: dict[str, str]) -> float:
    t = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in cmds]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a run failed ({p.returncode}): {err[-2000:]}")
    return time.perf_counter() - t


def main() -> None:
    from recsaver.data.prepare import PrepareConfig, prepare

    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--json", type=Path, default=HERE / "results" / "two_runs.json")
    args = ap.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        prepare(SHARED / "reviews.jsonl.gz", SHARED / "meta.jsonl.gz", data,
                PrepareConfig(domain="beauty", train_per_label=4, test_per_label=4))
        n, mt = args.examples, args.max_tokens

        def run(tag: str, splits: list[str], extra_env: dict[str, str] | None = None,
                sequential: bool = False) -> float:
            cache = tmp / f"{tag}.sqlite"
            cmds = [cmd(data, s, cache, tmp / f"{tag}-{k}", n, mt) for k, s in enumerate(splits)]
            e = {**env, **(extra_env or {})}
            return sum(together([c], e) for c in cmds) if sequential else together(cmds, e)

        one = run("one", ["test"])
        same = run("same", ["test", "test"])
        seq = run("seq", ["test", "train"], sequential=True)
        shared_cores = run("shared", ["test", "train"])
        fixed = run("fixed", ["test", "train"], {"RECSAVER_LLAMA_THREADS": "2"})
    result = {
        "examples": n, "max_tokens": mt, "cores": len(os.sched_getaffinity(0)), "load_average": os.getloadavg(),
        "one_run_s": round(one, 2), "same_examples_together_s": round(same, 2),
        "ratio_same_examples": round(same / one, 3),
        "different_sequential_s": round(seq, 2), "different_together_shared_cores_s": round(shared_cores, 2),
        "different_together_fixed_2_threads_s": round(fixed, 2),
        "ratio_different_shared": round(shared_cores / seq, 3), "ratio_different_fixed": round(fixed / seq, 3),
    }
    print(f"(a) same examples: one run {one:.1f} s, two together {same:.1f} s, ratio {result['ratio_same_examples']} "
          "(goal <= 1.2)")
    print(f"(b) different examples: one after the other {seq:.1f} s; together with shared cores {shared_cores:.1f} s "
          f"(ratio {result['ratio_different_shared']}, goal <= 1.05); together with 2 fixed threads each {fixed:.1f} s "
          f"(ratio {result['ratio_different_fixed']})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
