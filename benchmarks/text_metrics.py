"""Speed of `recsaver.metrics.text.TextScorer` on 500 candidates x 8 references (real reviews).

Workload: real review texts of 40-120 words from ../shared/data/amazon2023/*/reviews.jsonl.gz
(duplicates removed).  500 of them are candidates; each gets 8 references: other reviews of
the same user first (random order), filled up with random reviews.  Seeded.

Measured in one run, on the same loaded model:
  * each metric of `TextScorer.score` (BLEU, ROUGE-1, METEOR, BERTScore = encode + matching)
    and the total, against the 60 s goal;
  * the raw encoder pass: bert-score's tokenization (`sent_encode`) and the encoder forward
    (`bert_encode`) over every distinct text, length-sorted batches of 64: the floor for any
    BERTScore; ratio BERTScore / raw encoder (goal: at most 1.10);
  * the naive baseline: `bert_score.score(cands_repeated, refs_flat)` over all 4000 pairs
    (the straightforward call, same model and layer), then the max over each candidate's
    references; ratio naive / ours, and the largest difference between the two.
Model loading is reported apart (the naive call loads the model inside; its load is included
in its time, as a user of that call pays it).  The machine's load average is printed: other
work on this 2-core machine slows every timing down.

Run: .venv/bin/python benchmarks/text_metrics.py [--n 500] [--refs 8] [--no-naive] [--json PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "amazon2023"
GOAL_TOTAL_S = 60.0
GOAL_OVERHEAD = 1.10


def load_reviews(min_words: int = 40, max_words: int = 120) -> list[tuple[str, str]]:
    """(user_id, text) of every distinct review text with min..max words, both domains."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for path in sorted(DATA.glob("*/reviews.jsonl.gz")):
        with gzip.open(path, "rt") as fh:
            for line in fh:
                r = json.loads(line)
                text = " ".join(str(r.get("text") or "").split())
                if min_words <= len(text.split()) <= max_words and text not in seen:
                    seen.add(text)
                    out.append((r["user_id"], text))
    return out


def build_workload(n: int, n_refs: int, seed: int = 0):
    reviews = load_reviews()
    if len(reviews) < n + n_refs:
        raise SystemExit(f"only {len(reviews)} eligible reviews under {DATA}")
    rng = random.Random(seed)
    by_user: dict[str, list[str]] = defaultdict(list)
    for user, text in reviews:
        by_user[user].append(text)
    all_texts = [t for _, t in reviews]
    picks = rng.sample(reviews, n)
    candidates, references = [], {}
    for i, (user, text) in enumerate(picks):
        same = [t for t in by_user[user] if t != text]
        rng.shuffle(same)
        pool = same[:n_refs]
        while len(pool) < n_refs:
            t = rng.choice(all_texts)
            if t != text and t not in pool:
                pool.append(t)
        eid = f"ex{i:04d}"
        candidates.append((eid, text))
        references[eid] = pool
    return candidates, references


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def raw_encoder_pass(engine, texts: list[str]) -> float:
    """Tokenize + encoder forward over the distinct texts, as bert-score does, nothing else."""
    import torch
    from bert_score.utils import bert_encode, padding, sent_encode

    from recsaver.metrics.text import _heap_reuse

    t0 = time.perf_counter()
    ids = [sent_encode(engine.tokenizer, t) for t in texts]
    ids.sort(key=len, reverse=True)
    # Same glibc heap setting as TextScorer (reuse_heap=True), so the ratio compares like with like.
    with torch.inference_mode(), _heap_reuse(True):
        for s in range(0, len(ids), engine.batch_size):
            padded, _, mask = padding(ids[s:s + engine.batch_size], engine.tokenizer.pad_token_id)
            bert_encode(engine.model, padded.to(engine.device), attention_mask=mask.to(engine.device))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=500, help="candidates")
    ap.add_argument("--refs", type=int, default=8, help="references per candidate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-naive", action="store_true", help="skip bert_score.score baseline")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "text_metrics.json",
                    help="also write the results here")
    args = ap.parse_args()

    import torch

    print(f"load average at start: {loadavg()}; torch threads: {torch.get_num_threads()}")
    candidates, references = build_workload(args.n, args.refs, args.seed)
    distinct = list(dict.fromkeys([t for _, t in candidates] + [r for p in references.values() for r in p]))
    words = [len(t.split()) for t in distinct]
    print(f"workload: {len(candidates)} candidates x {args.refs} references = "
          f"{len(candidates) * args.refs} pairs; {len(distinct)} distinct texts, "
          f"{min(words)}-{max(words)} words (mean {sum(words) / len(words):.0f})")

    from recsaver.metrics.text import TextScorer, aggregate

    t0 = time.perf_counter()
    scorer = TextScorer()
    init_s = time.perf_counter() - t0
    engine = scorer._bert
    from bert_score.utils import sent_encode

    n_tokens = sum(len(sent_encode(engine.tokenizer, t)) for t in distinct)
    print(f"TextScorer() (imports, WordNet check, model load): {init_s:.1f} s; "
          f"{n_tokens} encoder tokens over the distinct texts")

    # Warm-up (thread pools, allocator) on a few texts, not timed.
    scorer.score(candidates[:4], {k: references[k] for k, _ in candidates[:4]})

    raw_s = raw_encoder_pass(engine, distinct)
    print(f"raw encoder pass: {raw_s:.1f} s (load {loadavg()})")

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    result = scorer.score(candidates, references)
    total_s = time.perf_counter() - t0
    total_cpu = time.process_time() - cpu0
    tm = scorer.last_timings
    print(f"TextScorer.score: {total_s:.1f} s wall, {total_cpu:.1f} s CPU (load {loadavg()})")

    naive_s = None
    max_diff = None
    if not args.no_naive:
        import bert_score

        cands_rep = [c for eid, c in candidates for _ in references[eid]]
        refs_flat = [r for eid, _ in candidates for r in references[eid]]
        t0 = time.perf_counter()
        _, _, f1 = bert_score.score(cands_rep, refs_flat, model_type=engine.model_type,
                                    num_layers=engine.num_layers, lang="en", device=engine.device,
                                    batch_size=engine.batch_size)
        best = f1.view(len(candidates), args.refs).max(dim=1).values.tolist()
        naive_s = time.perf_counter() - t0
        ours = [s.scores["bertscore"] for s in result]
        max_diff = max(abs(a - b) for a, b in zip(ours, best))
        print(f"naive bert_score.score: {naive_s:.1f} s (load {loadavg()})")

    bert_s = tm["bertscore"]
    rows = [
        ("BLEU (sacrebleu, multi-ref)", tm["bleu"], ""),
        ("ROUGE-1 F1 (rouge-score, max)", tm["rouge1"], ""),
        ("METEOR (nltk, max)", tm["meteor"], ""),
        ("BERTScore F1 (max) total", bert_s, f"{bert_s / raw_s:.3f}x raw encoder (goal <= {GOAL_OVERHEAD:.2f})"),
        ("  encode distinct texts", tm["bertscore_encode"], f"{scorer.last_counts['distinct_texts']} texts"),
        ("  greedy matching", tm["bertscore_match"], f"{scorer.last_counts['distinct_pairs']} pairs"),
        ("total score()", total_s, f"{total_s / GOAL_TOTAL_S:.2f}x the {GOAL_TOTAL_S:.0f} s goal "
                                   f"({'met' if total_s <= GOAL_TOTAL_S else 'NOT met'})"),
        ("raw encoder pass (floor)", raw_s, "tokenize + forward, distinct texts"),
    ]
    if naive_s is not None:
        rows.append((f"naive bert_score.score, {len(candidates) * args.refs} pairs", naive_s,
                     f"naive/ours {naive_s / bert_s:.2f}x; max |diff| {max_diff:.1e}"))
    rows.append(("TextScorer() init (not in total)", init_s, "imports, WordNet, model load"))

    width = max(len(r[0]) for r in rows)
    print()
    print(f"| {'step':<{width}} | {'seconds':>8} | note")
    print(f"|{'-' * (width + 2)}|{'-' * 10}|------")
    for name, sec, note in rows:
        print(f"| {name:<{width}} | {sec:>8.2f} | {note}")
    print()
    agg = aggregate(result)
    for m, st in agg["metrics"].items():
        print(f"{m:9s} mean {st['mean']:.3f} [{st['ci_low']:.3f}, {st['ci_high']:.3f}] "
              f"min {st['min']:.3f} max {st['max']:.3f} std {st['std']:.3f}")
    print(f"load average at end: {loadavg()}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "n_candidates": len(candidates), "n_refs": args.refs, "distinct_texts": len(distinct),
            "encoder_tokens": n_tokens, "init_s": init_s, "timings": tm, "total_s": total_s,
            "total_cpu_s": total_cpu, "raw_encoder_s": raw_s, "naive_s": naive_s,
            "naive_max_abs_diff": max_diff, "aggregate": agg, "signature": scorer.signature(),
            "loadavg_end": loadavg(),
        }, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
