"""Every command that calls a model takes the same engine options and hands them to its backend.

Two fake OpenAI-compatible servers (tests/backends/fault_server.py) stand in for the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsaver.cli import app
from tests.backends.fault_server import FaultServer

COMMANDS = {
    "predict": ["predict", "--method", "direct"],
    "references": ["references", "--samples", "1"],
    "distill sample": ["distill", "sample", "--samples", "2"],
}


def answer(body: object) -> str:
    return "The user liked similar items.\n### Rating ###\n4"


@pytest.mark.parametrize("command", COMMANDS)
def test_engine_options_reach_the_backend(command: str, small_beauty: Path, tmp_path: Path) -> None:
    def args(*servers: str, balance: str = "round-robin") -> list[str]:
        urls = [a for url in servers for a in ("--base-url", url)]
        return [*COMMANDS[command], "--data", str(small_beauty), "--limit", "2", "--max-tokens", "8",
                "--model", "openai/fault-model", *urls, "--balance", balance, "--concurrency", "1",
                "--n-ctx", "2048", "--cache", str(tmp_path / "cache.sqlite"), "--out", str(tmp_path / "run"),
                "--no-progress"]

    with FaultServer(reply=answer) as first, FaultServer(reply=answer) as second:
        result = CliRunner().invoke(app, args(first.url, second.url))
        assert result.exit_code == 0, result.output
        assert first.completions_seen() and second.completions_seen()  # spread over both servers
    config = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert (config["n_ctx"], config["base_urls"], config["balance"], config["concurrency"]) == (
        2048, [first.url, second.url], "round-robin", 1)

    # The backend itself checks --balance, so a bad value proves it got that far.
    result = CliRunner().invoke(app, args(first.url, balance="nope"))
    assert result.exit_code == 2 and "balance must be one of" in result.output
