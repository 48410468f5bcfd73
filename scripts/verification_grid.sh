#!/usr/bin/env bash
# Issue 18's grid: do writers explain the rating they are given, and do verifiers recover it?
#   writers   Qwen2.5-0.5B, Qwen2.5-1.5B                 (llamacpp/qwen2.5-0.5b, llamacpp/qwen2.5-1.5b)
#   prompts   the paper's explanation prompt, and `meaning` (says what the rating means)
#   verifiers Qwen2.5-0.5B, Qwen2.5-1.5B (the 1.5B also judges which rating each explanation argues for)
#   modes     every mode of `recsaver references audit`, rebuilt from the stored probabilities
# on 4 test examples per label (20 per domain) taken from the Table 3 test split, with SAMPLES explanations of
# the gold rating and NEGATIVES of a wrong one (gold +-2) per example.
#
# Usage: scripts/verification_grid.sh OUT_DIR PREPARED_DIR...   (e.g. the data cells of a Table 3 run:
#   runs/table3/beauty/data runs/table3/movies/data; each must hold test.jsonl with >= 4 examples per label)
# Knobs (environment): PER_LABEL (4), SAMPLES (2), NEGATIVES (2), MAX_TOKENS (256), WRITERS, VERIFIERS, PROMPTS,
# JUDGE (llamacpp/qwen2.5-1.5b), CACHE ($OUT/cache.sqlite).
# Every call is cached: rerun the same command after a crash and finished work is reused.
# Output: OUT/<domain>/<writer>-<prompt>/verifier-<verifier>/ (one references run each) and OUT/audit.json.
set -euo pipefail

OUT=${1:?usage: scripts/verification_grid.sh OUT_DIR PREPARED_DIR...}
shift
[ $# -ge 1 ] || { echo "give at least one PREPARED_DIR" >&2; exit 2; }
PER_LABEL=${PER_LABEL:-4}
SAMPLES=${SAMPLES:-2}
NEGATIVES=${NEGATIVES:-2}
MAX_TOKENS=${MAX_TOKENS:-256}
WRITERS=${WRITERS:-"llamacpp/qwen2.5-0.5b llamacpp/qwen2.5-1.5b"}
VERIFIERS=${VERIFIERS:-"llamacpp/qwen2.5-0.5b llamacpp/qwen2.5-1.5b"}
PROMPTS=${PROMPTS:-"paper meaning"}
JUDGE=${JUDGE:-llamacpp/qwen2.5-1.5b}
CACHE=${CACHE:-$OUT/cache.sqlite}
RECSAVER=${RECSAVER:-.venv/bin/recsaver}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
started=$(date +%s)
stamp() { echo "[$(( ($(date +%s) - started) / 60 )) min] $*"; }

runs=()
for prepared in "$@"; do
  domain=$(basename "$(dirname "$prepared")")
  [ "$domain" = "." ] && domain=$(basename "$prepared")
  data="$OUT/$domain/data"
  # The first PER_LABEL test examples of each label, in the split's order; train and stats as they are.
  "$PY" - "$prepared" "$data" "$PER_LABEL" <<'PYEOF'
import json, shutil, sys
from collections import Counter
from pathlib import Path
src, dst, per = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
dst.mkdir(parents=True, exist_ok=True)
for f in src.iterdir():
    if f.is_file() and f.name != "test.jsonl":
        shutil.copy2(f, dst / f.name)
seen, kept = Counter(), []
for line in (src / "test.jsonl").read_text().splitlines():
    r = json.loads(line)["rating"]
    if seen[r] < per:
        seen[r] += 1
        kept.append(line)
if sorted(seen.values()) != [per] * 5:
    sys.exit(f"{src}/test.jsonl: fewer than {per} test examples of some label ({dict(seen)})")
(dst / "test.jsonl").write_text("\n".join(kept) + "\n")
PYEOF
  for writer in $WRITERS; do  # the cheaper writer's cells first: their figures come early
    for prompt in $PROMPTS; do
      for verifier in $VERIFIERS; do
        name="$OUT/$domain/${writer##*/}-$prompt/verifier-${verifier##*/}"
        judge=()
        [ "$verifier" = "$JUDGE" ] && judge=(--judge-model "$JUDGE")  # once per writer x prompt
        stamp "$domain: writer $writer, prompt $prompt, verifier $verifier"
        "$RECSAVER" references --data "$data" --model "$writer" --verifier-model "$verifier" "${judge[@]}" \
          --explain-prompt "$prompt" --samples "$SAMPLES" --negatives "$NEGATIVES" --max-tokens "$MAX_TOKENS" \
          --temperature 0.7 --verify exact --cache "$CACHE" --out "$name" --no-progress
        runs+=("$name")
      done
    done
  done
done
"$RECSAVER" references audit "${runs[@]}" --json "$OUT/audit.json"
stamp "done"
