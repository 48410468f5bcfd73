"""kill -9 `recsaver predict` at random points, many times: nothing generated is lost or duplicated.

The test suite runs 5 kills (tests/steps/test_kill_resume.py); this script runs as many as asked.
Per trial: start predict (SmolLM2, real Beauty examples, greedy), SIGKILL it after a random delay,
check that the cache never shrinks, then finish the run and compare its predictions byte for byte
with an uninterrupted run in a separate cache, and check that each example was generated exactly
once (cache misses of the finishing run == what was missing).

Run: .venv/bin/python benchmarks/kill_resume.py [--trials 20] [--limit 4] [--max-delay 8]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recsaver.cache import count_generations

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "amazon2023" / "All_Beauty"


def predict(data: Path, out: Path, cache: Path, limit: int) -> list[str]:
    return [sys.executable, "-m", "recsaver.cli", "predict", "--data", str(data), "--limit", str(limit),
            "--max-tokens", "16", "--out", str(out), "--cache", str(cache), "--no-progress"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--max-delay", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "kill_resume.json")
    args = ap.parse_args()

    from recsaver.data.prepare import PrepareConfig, prepare
    from recsaver.data.sources import FieldCaps

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="recsaver-kill-"))
    data = work / "data"
    caps = FieldCaps(title=80, description=120, review_title=60, review_text=160)
    prepare(DATA / "reviews.jsonl.gz", DATA / "meta.jsonl.gz", data,
            PrepareConfig(domain="beauty", train_per_label=6, test_per_label=2, caps=caps))
    subprocess.run(predict(data, work / "reference", work / "reference.sqlite", args.limit), check=True,
                   capture_output=True)
    expected = (work / "reference" / "predictions.jsonl").read_bytes()

    results = []
    for trial in range(args.trials):
        cache, out = work / f"t{trial}.sqlite", work / f"t{trial}"
        counts = [0]
        kills = 0
        while counts[-1] < args.limit and kills < 3:
            proc = subprocess.Popen(predict(data, out, cache, args.limit), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, args.max_delay))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            counts.append(count_generations(cache))
        before = counts[-1]
        done = subprocess.run(predict(data, out, cache, args.limit), capture_output=True, text=True)
        ledger = json.loads((out / "run.json").read_text())["ledger"] if done.returncode == 0 else {}
        ok = (done.returncode == 0 and all(b >= a for a, b in zip(counts, counts[1:]))
              and ledger.get("cache_hits") == before and ledger.get("cache_misses") == args.limit - before
              and count_generations(cache) == args.limit and (out / "predictions.jsonl").read_bytes() == expected)
        results.append({"trial": trial, "kills": kills, "cached_after_each_kill": counts[1:], "ok": ok})
        print(f"trial {trial:2d}: kills {kills}, cached after each kill {counts[1:]}, "
              f"{'ok' if ok else 'FAILED'}", flush=True)
    failed = [r for r in results if not r["ok"]]
    print(f"{len(results) - len(failed)}/{len(results)} trials: nothing lost, nothing generated twice, "
          "outputs identical to an uninterrupted run")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"trials": results, "failed": len(failed), "limit": args.limit}, indent=2))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
