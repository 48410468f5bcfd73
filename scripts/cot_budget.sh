#!/usr/bin/env bash
# Issue 18, "reasoning that finishes": how many CoT ratings are forced (the answer ran out of tokens before
# its rating, which is then read from P(1..5) after an appended header) at several token budgets, and what the
# budget does to the rating metrics. Greedy, under the answer grammar, as configs/table3.yaml runs CoT.
#
# Usage: scripts/cot_budget.sh OUT_DIR PREPARED_DIR...   (e.g. runs/vgrid/beauty/data runs/vgrid/movies/data,
#   the 4-per-label subsets scripts/verification_grid.sh writes)
# Knobs (environment): MODEL (llamacpp/qwen2.5-0.5b), BUDGETS ("300 512 768"), CACHE ($OUT/cache.sqlite).
# Output: OUT/<domain>-<budget>/ (one predict run each) and OUT/budget.md (forced share and metrics per budget).
set -euo pipefail

OUT=${1:?usage: scripts/cot_budget.sh OUT_DIR PREPARED_DIR...}
shift
MODEL=${MODEL:-llamacpp/qwen2.5-0.5b}
BUDGETS=${BUDGETS:-"300 512 768"}
CACHE=${CACHE:-$OUT/cache.sqlite}
RECSAVER=${RECSAVER:-.venv/bin/recsaver}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
runs=()
for data in "$@"; do
  domain=$(basename "$(dirname "$data")")
  for budget in $BUDGETS; do
    run="$OUT/$domain-$budget"
    echo "[$(date +%H:%M)] $domain, max_tokens $budget"
    "$RECSAVER" predict --data "$data" --model "$MODEL" --method cot --grammar --max-tokens "$budget" \
      --cache "$CACHE" --out "$run" --no-progress > "$run.log" 2>&1 || { cat "$run.log"; exit 1; }
    runs+=("$run")
  done
done
"$PY" - "$OUT/budget.md" "${runs[@]}" <<'PYEOF'
import json, sys
from pathlib import Path
lines = ["| run | n | forced | mean completion tokens | binary acc | 5-class acc | 5-class AUC | MAE | RMSE |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
for run in sys.argv[2:]:
    m = json.loads((Path(run) / "metrics.json").read_text())
    ledger = json.loads((Path(run) / "run.json").read_text())["ledger"]
    v = {k: x["value"] for k, x in m["metrics"].items()}
    lines.append(f"| {Path(run).name} | {m['n']} | {m.get('forced_rating_share', 0):.0%} | "
                 f"{ledger['completion_tokens'] / max(ledger['requests'], 1):.0f} | {v['binary_acc']:.3f} | "
                 f"{v['multi_acc']:.3f} | {v['multi_auc']:.3f} | {v['mae']:.3f} | {v['rmse']:.3f} |")
Path(sys.argv[1]).write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
