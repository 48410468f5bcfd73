"""A real distillation grid (paper Tables 4 and 5) through `recsaver experiment run`, at the smallest scale.

SmolLM2-135M teaches itself on two examples of the built-in sample (llama.cpp, grammar, 16 tokens);
SmolLM2-135M students (transformers + LoRA, two steps) learn the reasoning and the rating-only targets;
both students predict two test examples with P(1..5) from the rating-token logits.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsaver.data.records import read_jsonl
from tests.report.smoke import SMOKE, invoke

GRID = ["--no-progress", "--set", "tables=[table4,table5]", "--set", "methods=[]", "--set", "baseline=false",
        "--set", "references.enabled=false", "--set", "predict.limit=2", "--set", "predict.max_tokens=16",
        "--set", "predict.direct_max_tokens=4", "--set", "predict.grammar=false",
        "--set", "distill.teacher=llamacpp/smollm2-135m", "--set", "distill.students=[smollm2-135m]",
        "--set", "distill.rating_only=[false,true]", "--set", "distill.sample.max_tokens=16",
        "--set", "distill.sample.grammar=true", "--set", "distill.finetune.lora=4",
        "--set", "distill.finetune.max_steps=2", "--set", "distill.finetune.max_length=1024"]


@pytest.mark.slow
def test_distillation_grid_trains_students_and_renders_tables_4_and_5(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    result = invoke(["experiment", "run", str(SMOKE), "--out", str(folder), *GRID])
    record = json.loads((folder / "experiment.json").read_text())
    kinds = [c["kind"] for c in record["cells"]]
    assert kinds == ["data", "distill-sample", "sft", "finetune", "predict", "sft", "finetune", "predict"], kinds
    assert all(c["status"] == "ran" for c in record["cells"]), result.output

    teacher = list(read_jsonl(folder / "beauty/distill/teacher-m1/samples.jsonl"))
    assert len(teacher) == 2 and all(1 <= s["teacher_rating"] <= 5 for s in teacher), teacher
    for target in ("reason", "rating"):
        tune = folder / f"beauty/distill/smollm2-135m-m1-none-{target}"
        log = list(read_jsonl(tune / "train_log.jsonl"))
        assert [r["step"] for r in log] == [1, 2], log
        predictions = list(read_jsonl(tune / "predict" / "predictions.jsonl"))
        assert len(predictions) == 2
        for p in predictions:  # every student answer carries a distribution over the five ratings
            assert p["probs"] and sum(p["probs"]) == pytest.approx(1.0, abs=1e-3), p
            assert p["rating_pred"] in range(1, 6), p

    tables = (folder / "tables.md").read_text()
    assert "Table 4" in tables and "smollm2-135m ✓ reasoning" in tables and "smollm2-135m ✗ rating only" in tables
    assert "Table 5" in tables and "smollm2-135m m=1 filter=none" in tables

    # Everything is kept: a second run trains and asks nothing again.
    again = invoke(["experiment", "run", str(SMOKE), "--out", str(folder), *GRID])
    assert "0 ran, 8 skipped" in again.output, again.output
