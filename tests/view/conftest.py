"""Real runs for the viewer: SmolLM2 CoT and direct predictions, Rec-SAVER references and a score over the
small real Beauty split; a 10,000-row run written from those real rows; a live viewer server."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsaver.cli import app
from tests.web_server import serve_app

N_BIG = 10_000
XSS = "<script>alert('x')</script><b>bold?</b>"


def invoke(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (args, result.output)


@pytest.fixture(scope="session")
def view_runs(small_beauty: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A (cot, scored into A), B (direct), R (references): the commands a user runs, through the CLI.

    `--verify none`: SmolLM2 as its own exact verifier keeps nothing on these examples, and `score`
    refuses an all-empty pool; the viewer's subject is what was written, not the verifier's quality."""
    root = tmp_path_factory.mktemp("view_runs")
    cache = str(root / "cache.sqlite")
    data = str(small_beauty)
    a, b, r = root / "A", root / "B", root / "R"
    invoke(["predict", "--data", data, "--limit", "3", "--method", "cot", "--grammar", "--max-tokens", "40",
            "--out", str(a), "--cache", cache, "--no-progress"])
    invoke(["predict", "--data", data, "--limit", "3", "--method", "direct", "--out", str(b), "--cache", cache,
            "--no-progress"])
    invoke(["references", "--data", data, "--limit", "3", "--samples", "2", "--max-tokens", "40", "--negatives", "1",
            "--verify", "none", "--out", str(r), "--cache", cache, "--no-progress"])
    invoke(["score", "--predictions", str(a), "--references", str(r), "--metrics", "bleu,rouge1", "--out", str(a)])
    return {"A": a, "B": b, "R": r, "data": small_beauty}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="session")
def big_run(view_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 predictions copied from run A's real rows (new example ids, gold ratings cycling 1..5), with
    text scores for every other row; row 7's reasoning carries markup, which must show as text."""
    out = tmp_path_factory.mktemp("big") / "run"
    out.mkdir()
    shutil.copy(view_runs["A"] / "run.json", out / "run.json")
    preds = read_jsonl(view_runs["A"] / "predictions.jsonl")
    scores = {s["example_id"]: s for s in read_jsonl(view_runs["A"] / "text_scores.jsonl")}
    rows, score_rows = [], []
    for k in range(N_BIG):
        base = preds[k % len(preds)]
        row = {**base, "example_id": f"big{k:05d}", "rating_true": k % 5 + 1}
        if k == 7:
            row["reasoning"] = XSS + " " + (base["reasoning"] or "")
        rows.append(row)
        if k % 2 == 0:
            score_rows.append({**scores[base["example_id"]], "example_id": row["example_id"]})
    write_jsonl(out / "predictions.jsonl", rows)
    write_jsonl(out / "text_scores.jsonl", score_rows)
    return out


def serve(runs: list[Path]) -> Iterator[str]:
    """The real viewer under uvicorn on a free 127.0.0.1 port, in a thread; yields the base URL."""
    from recsaver.view.app import create_app

    yield from serve_app(create_app(runs), "viewer")
