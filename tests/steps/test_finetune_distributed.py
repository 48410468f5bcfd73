"""`recsaver finetune --nproc 2`: two real DDP processes (gloo on CPU), here and as Ray Train workers.

The student, tokenizer and SFT rows are those of test_finetune.py (a tiny random Llama with the real
SmolLM2 tokenizer; 4 real Beauty rows with a written reasoning). Evidence that two processes trained
rather than one: 4 rows at batch 1 take 2 optimizer steps an epoch instead of 4 (each process got
half the rows, the Trainer's sharding), the Trainer reports world size 2, and each rank saved its
own RNG state into the checkpoint.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from recsaver.data.records import read_jsonl
from tests.steps.test_finetune import losses, sft, smol_dir, tiny_llama, tokenizer, weights  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


def finetune_cli(*args: str) -> typer.testing.Result:
    from recsaver.cli.distill import register

    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, ["finetune", *args, "--no-progress"])


def two_ranks_trained(out: Path, steps: int) -> None:
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_step"] == steps
    assert metrics["threads_per_process"] >= 1  # cores shared out, not all cores in each process
    assert json.loads((out / "run.json").read_text())["world_size"] == 2
    checkpoint = out / "checkpoints" / f"checkpoint-{steps}"
    assert (checkpoint / "rng_state_0.pth").is_file() and (checkpoint / "rng_state_1.pth").is_file()
    assert [r["step"] for r in read_jsonl(out / "train_log.jsonl")] == list(range(1, steps + 1))  # one writer


def test_two_processes_train_resume_and_predict(tiny_llama, sft, small_beauty, tmp_path):  # noqa: F811
    from recsaver.cli import app as main_app

    out = tmp_path / "ddp"
    common = ["--train", str(sft["reasoning"]), "--model", str(tiny_llama), "--out", str(out), "--full",
              "--lr", "1e-2", "--dropout", "0", "--save-steps", "4", "--nproc", "2"]
    result = finetune_cli(*common, "--epochs", "4")
    assert result.exit_code == 0, result.output
    assert "8 steps" in result.output and "2 processes" in result.output
    two_ranks_trained(out, 8)  # 4 epochs x 2 steps: each process took 2 of the 4 rows an epoch
    log = losses(out)
    assert sum(log[-2:]) / 2 < log[0] - 0.2, log
    before, after = weights(tiny_llama), weights(out)
    assert any(not before[k].equal(after[k]) for k in before)

    resumed = finetune_cli(*common, "--epochs", "6", "--resume")
    assert resumed.exit_code == 0, resumed.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == 8
    two_ranks_trained(out, 12)
    assert losses(out)[:8] == log  # the steps before the checkpoint are kept, not trained again

    run = tmp_path / "predict"
    result = CliRunner().invoke(main_app, [
        "predict", "--data", str(small_beauty), "--limit", "2", "--method", "direct", "--max-tokens", "4",
        "--model", f"hf/{out}", "--cache", str(tmp_path / "c.sqlite"), "--out", str(run), "--no-progress"])
    assert result.exit_code == 0, result.output
    for pred in read_jsonl(run / "predictions.jsonl"):
        assert pred["rating_pred"] in (1, 2, 3, 4, 5) and sum(pred["probs"]) == pytest.approx(1.0)


def test_ray_workers_train_the_same_way(tiny_llama, sft, tmp_path, monkeypatch):  # noqa: F811
    from recsaver import api

    monkeypatch.chdir(sft["reasoning"].parent)  # relative paths, as typed: the workers run elsewhere
    out = tmp_path / "ray"
    metrics = api.finetune(out=out, train=sft["reasoning"].name, model=str(tiny_llama), lora=4, lr=5e-2,
                           dropout=0.0, epochs=2, save_steps=4, nproc=2, executor="ray", ray_address="local")
    assert metrics["global_step"] == 4 and metrics["world_size"] == 2
    two_ranks_trained(out, 4)
    assert (out / "adapter_config.json").is_file() and (out / "merged" / "config.json").is_file()
    resolved = json.loads((out / "finetune_config.json").read_text())
    assert resolved["executor"] == "ray" and resolved["nproc"] == 2


@pytest.mark.parametrize("executor", [["--executor", "local"], ["--executor", "ray", "--ray-address", "local"]],
                         ids=["local", "ray"])
def test_a_failing_worker_fails_the_command_with_its_rank_and_error(executor, tiny_llama, tmp_path):  # noqa: F811
    bad = tmp_path / "sft"
    bad.mkdir()
    (bad / "train.jsonl").write_text(
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}\n'
        '{"messages": [{"role": "user", "content": "x"}]}\n')
    result = finetune_cli("--train", str(bad), "--model", str(tiny_llama), "--out", str(tmp_path / "out"),
                          "--nproc", "2", "--max-steps", "2", *executor)
    assert result.exit_code == 1, result.output
    # every rank reads the same file, so every rank that got that far reports the same error
    assert re.search(r"finetune ranks? [01](, 1)? failed: ValueError: \S*train.jsonl:2: field 'messages'",
                     result.output), result.output


def test_follow_log_passes_on_each_line_rank_0_writes(tmp_path):
    from recsaver.data.records import write_jsonl
    from recsaver.training.distributed import follow_log

    log = tmp_path / "train_log.jsonl"
    write_jsonl(log, [{"step": 1}, {"step": 2}, {"step": 3}])  # a resumed run's log, before it is cut back
    seen: list[int] = []
    with follow_log(log, lambda row: seen.append(row["step"]), every_s=0.01):
        deadline = time.monotonic() + 10
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        write_jsonl(log, [{"step": 1}, {"step": 2}])  # cut back to checkpoint-2
        with open(log, "a") as f:
            f.write('{"step": 3}\n{"step": 4}\n{"step"')  # the last line is not whole yet
    assert seen[:3] == [1, 2, 3] and seen[-2:] == [3, 4] and 4 in seen
