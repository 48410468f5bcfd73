#!/usr/bin/env bash
# Fine-tuning with reasoning on real data, CPU-sized (paper Section 4.3, Table 4 in miniature):
# Qwen2.5-0.5B teacher (llamacpp/qwen2.5-0.5b), M=2 samples per train example, filter 1-off,
# SmolLM2-135M LoRA students trained on (a) teacher reasoning + gold rating and (b) the gold
# rating alone, both evaluated on the same test examples, next to SmolLM2 without fine-tuning.
#
# Usage: scripts/distill_real.sh PREPARED_DIR [OUT_DIR]
#   PREPARED_DIR  from `recsaver data prepare` (train.jsonl, test.jsonl). Short fields keep the
#                 prompts small; prepare with e.g. --max-description-chars 120 --max-review-chars 160.
#   OUT_DIR       default runs/distill_real
# Knobs (environment): TRAIN (train examples, 100), TEST (test examples, 30), HISTORY (history
# items kept per example, 3), TEACHER_TOKENS (64), STUDENT_TOKENS (80), LR (3e-4), RANK (8),
# THREADS (torch threads, 2), CACHE (SQLite generation cache).
#
# Measured on 2 quiet cores (TRAIN=200 TEST=30, HISTORY=4: ~750-token prompts; docs/results.md):
#   teacher    200 ex x ~21 s (prompt at ~85 tok/s, then 2 x 64 tokens at ~10 tok/s)   55 min
#   students   191 reasoning rows x 7.6 s + 200 rating rows x 6.7 s                     46 min
#   evaluation 30 ex: reasoning (transformers, 80 tokens), rating-only, untuned SmolLM2   9 min
#   total                                                                              110 min
# Time grows linearly with TRAIN (TRAIN=40: about 25 min).
# Every model call is cached and every training run checkpoints: rerun the same command after
# a crash and finished work is reused.
set -euo pipefail

DATA=${1:?usage: scripts/distill_real.sh PREPARED_DIR [OUT_DIR]}
OUT=${2:-runs/distill_real}
TRAIN=${TRAIN:-100}
TEST=${TEST:-30}
HISTORY=${HISTORY:-4}
TEACHER_TOKENS=${TEACHER_TOKENS:-64}
STUDENT_TOKENS=${STUDENT_TOKENS:-80}
LR=${LR:-3e-4}
RANK=${RANK:-8}
THREADS=${THREADS:-2}
CACHE=${CACHE:-$OUT/cache.sqlite}
RECSAVER=${RECSAVER:-.venv/bin/recsaver}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
started=$(date +%s)
stamp() { echo "[$(( ($(date +%s) - started) / 60 )) min] $*"; }

# The examples of this run: the first TRAIN / TEST (splits are shuffled, labels mixed), history cut
# to the last HISTORY items so that prompts stay short enough for a 2-core CPU.
stamp "data: $TRAIN train, $TEST test examples, last $HISTORY history items"
"$PY" - "$DATA" "$OUT/data" "$TRAIN" "$TEST" "$HISTORY" <<'EOF'
import sys
from dataclasses import replace
from pathlib import Path
from recsaver.data.records import load_examples, write_jsonl
src, dst, n_train, n_test, keep = Path(sys.argv[1]), Path(sys.argv[2]), *map(int, sys.argv[3:])
for split, n in (("train", n_train), ("test", n_test)):
    rows = load_examples(src / f"{split}.jsonl")[:n]
    write_jsonl(dst / f"{split}.jsonl", (replace(e, history=e.history[-keep:]).to_dict() for e in rows))
EOF

stamp "teacher: llamacpp/qwen2.5-0.5b, M=2"
"$RECSAVER" distill sample --data "$OUT/data" --model llamacpp/qwen2.5-0.5b --samples 2 --temperature 0.7 \
  --max-tokens "$TEACHER_TOKENS" --grammar --cache "$CACHE" --out "$OUT/teacher"

stamp "training rows: reasoning (filter 1-off) and rating-only"
"$RECSAVER" distill build --teacher "$OUT/teacher" --filter 1-off --out "$OUT/sft-reasoning"
"$RECSAVER" distill build --teacher "$OUT/teacher" --filter none --rating-only --out "$OUT/sft-rating"

for target in reasoning rating; do
  stamp "student: SmolLM2-135M LoRA r=$RANK on $target rows"
  resume=()
  [ -d "$OUT/student-$target/checkpoints" ] && resume=(--resume)
  "$RECSAVER" finetune --train "$OUT/sft-$target" --model smollm2-135m --out "$OUT/student-$target" \
    --lora "$RANK" --epochs 1 --lr "$LR" --max-length 2048 --threads "$THREADS" --no-merge "${resume[@]}"
done

stamp "evaluation on $TEST test examples"
"$RECSAVER" predict --data "$OUT/data" --model "hf/$OUT/student-reasoning" --method cot \
  --max-tokens "$STUDENT_TOKENS" --cache "$CACHE" --out "$OUT/eval-reasoning"
"$RECSAVER" predict --data "$OUT/data" --model "hf/$OUT/student-rating" --method direct \
  --max-tokens 4 --cache "$CACHE" --out "$OUT/eval-rating"
"$RECSAVER" predict --data "$OUT/data" --model llamacpp/smollm2-135m --method direct \
  --max-tokens 4 --grammar --cache "$CACHE" --out "$OUT/eval-base"

stamp "summary"
"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
cols = ("binary_acc", "binary_f1", "binary_auc", "multi_acc", "multi_auc", "mae", "rmse")
print(f"{'student':<34}" + "".join(f"{c:>11}" for c in cols))
for name, label in (("eval-reasoning", "SmolLM2 LoRA, reasoning (1-off)"), ("eval-rating", "SmolLM2 LoRA, rating only"),
                    ("eval-base", "SmolLM2, no fine-tuning")):
    m = json.loads((out / name / "metrics.json").read_text())["metrics"]
    cells = [m[c]["value"] if c in m else None for c in cols]
    print(f"{label:<34}" + "".join(f"{'-' if v is None else f'{v:.3f}':>11}" for v in cells))
print(json.dumps(json.loads((out / "sft-reasoning" / "stats.json").read_text())["kept_per_filter"]))
EOF
stamp "done: $OUT"
