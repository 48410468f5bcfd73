"""Study fixtures: runs over the real small Beauty examples, study folders, a live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recsaver.data.records import Prediction, load_examples, write_jsonl
from recsaver.steps.runs import write_run
from recsaver.study.create import CreateConfig, create_study
from tests.web_server import serve_app

# A handwritten reasoning per example (the app and the access rules are our own logic; the
# model's own text is used in test_real_study.py and test_browser.py). The last sentence states
# the predicted rating and must never reach a rater.
LEAK = "Overall I predict the user would rate this product 4 stars."


def handmade_reasoning(k: int, n_history: int) -> str:
    return (f"The user bought {n_history} products before and rated the serums highly. "
            f"The new item is a similar skin care product (case {k}).\n{LEAK}")


@pytest.fixture(scope="session")
def handmade_run(small_beauty: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder over the real small Beauty test split, with handwritten reasoning texts."""
    out = tmp_path_factory.mktemp("handmade_run")
    examples = load_examples(small_beauty / "test.jsonl")
    preds = [Prediction(e.example_id, e.rating, 5 if k % 2 else e.rating,
                        reasoning=handmade_reasoning(k, len(e.history)), rating_source="parsed")
             for k, e in enumerate(examples)]
    write_jsonl(out / "predictions.jsonl", (p.to_dict() for p in preds))
    write_run(out, step="predict", config={"data": str(small_beauty), "split": "test", "model": "handmade/test",
                                           "method": "cot", "ablation": "none"},
              data_file=small_beauty / "test.jsonl")
    return out


@pytest.fixture
def study(handmade_run: Path, tmp_path: Path) -> tuple[Path, str]:
    """(study folder, admin token): every handmade item, 3 raters per item."""
    result = create_study(CreateConfig(runs=(str(handmade_run),), per_domain=10, raters=3), tmp_path / "study")
    return tmp_path / "study", result.admin_token


@pytest.fixture(scope="session")
def real_run(small_beauty: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real SmolLM2 predictions with reasoning (the only model calls of tests/study)."""
    from typer.testing import CliRunner

    from recsaver.cli import app

    out = tmp_path_factory.mktemp("real_run")
    result = CliRunner().invoke(app, ["predict", "--data", str(small_beauty), "--limit", "2", "--max-tokens", "24",
                                      "--grammar", "--out", str(out / "run"), "--cache", str(out / "cache.sqlite"),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    return out / "run"


@pytest.fixture
def live_server(study: tuple[Path, str]) -> Iterator[str]:
    """The real app under uvicorn on a free 127.0.0.1 port; yields the base URL."""
    yield from serve(study[0])


def serve(folder: Path) -> Iterator[str]:
    from recsaver.study.app import create_app

    yield from serve_app(create_app(folder), "study server")
