"""Command line options generated from the step configs: one option per field, --config FILE.yaml, --set."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from typer.testing import CliRunner

from recsaver.cli import app
from recsaver.config.schema import DistillSampleConfig, FinetuneConfig, PredictConfig, ReferencesConfig, ScoreConfig
from recsaver.data.prepare import PrepareConfig


def options_of(command: list[str]) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_field_is_an_option_with_its_help() -> None:
    for command, cls in ((["predict"], PredictConfig), (["references", "run"], ReferencesConfig),
                         (["distill", "sample"], DistillSampleConfig), (["finetune"], FinetuneConfig),
                         (["score"], ScoreConfig), (["data", "prepare"], PrepareConfig)):
        text = options_of(command)
        for f in dataclasses.fields(cls):
            if f.name in ("extra", "caps", "batch_rows", "memory_limit"):
                continue
            flag = f.metadata.get("flag") or f.name.replace("_", "-")
            assert f"--{flag}" in text, (command, flag)
            assert f.metadata["help"].split()[0] in text, (command, f.name)
        assert "--config" in text and "--set" in text


def test_config_file_options_and_set_in_that_order(small_beauty: Path, tmp_path: Path) -> None:
    """A real direct prediction: the file gives method and limit, the line overrides limit, --set the seed."""
    conf = tmp_path / "predict.yaml"
    conf.write_text("method: direct\nlimit: 1\nmax_tokens: 12\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["predict", "--data", str(small_beauty), "--config", str(conf), "--limit", "2",
                                      "--set", "seed=3", "--cache", str(tmp_path / "c.sqlite"), "--out", str(out),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "run.json").read_text())["config"]
    assert (config["method"], config["limit"], config["max_tokens"], config["seed"]) == ("direct", 2, 12, 3)
    assert config["grammar"] is True  # the schema default, as in an experiment


def test_bad_values_name_where_they_came_from(tmp_path: Path) -> None:
    conf = tmp_path / "predict.yaml"
    conf.write_text("data: x\nmethod: sideways\n")
    result = CliRunner().invoke(app, ["predict", "--config", str(conf), "--out", str(tmp_path / "o")])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and f"{conf}:2" in said and "method must be one of cot, direct" in said
    unknown = CliRunner().invoke(app, ["predict", "--data", "x", "--set", "temprature=1", "--out", str(tmp_path)])
    assert unknown.exit_code == 2 and "unknown key 'temprature'" in unknown.output
    both = CliRunner().invoke(app, ["finetune", "--train", "x", "--lora", "4", "--full", "--out", str(tmp_path)])
    assert both.exit_code == 2 and "either --lora RANK or --full" in both.output
