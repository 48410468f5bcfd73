"""One real run of configs/smoke.yaml (built-in sample, SmolLM2, 1 example) shared by the tests of a session."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from recsaver.cli import experiment, report

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "configs" / "smoke.yaml"
TINY = ["--set", "predict.limit=1", "--set", "references.samples=2", "--no-progress"]
_MEMO: dict[str, Any] = {}


def cli() -> typer.Typer:
    app = typer.Typer()
    experiment.register(app)
    report.register(app)
    return app


def invoke(args: list[str]) -> Any:
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result


def smoke_experiment(factory: pytest.TempPathFactory) -> dict[str, Any]:
    """{"folder", "output", "record"} of the first run (later runs in tests overwrite experiment.json)."""
    if "folder" not in _MEMO:
        folder = factory.mktemp("smoke") / "exp"
        result = invoke(["experiment", "run", str(SMOKE), "--out", str(folder), *TINY])
        record = json.loads((folder / "experiment.json").read_text())
        pristine = factory.mktemp("smoke_pristine") / "exp"
        shutil.copytree(folder, pristine)
        _MEMO.update(folder=pristine, output=result.output, record=record)
    return dict(_MEMO)
