"""The run store reads back exactly what the real steps wrote, and names every folder's kind."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from recsaver.data.records import load_examples, read_jsonl
from recsaver.reports.html import classify
from recsaver.steps.baseline import predict_baseline, run_baseline
from recsaver.store import (
    EXPERIMENT,
    EXPERIMENT_KIND,
    METRICS,
    PREDICTIONS,
    RUN,
    SIGNIFICANCE,
    STATS,
    TEST,
    TRAIN,
    DataStore,
    NotARunError,
    RunStore,
    guess_kind,
    load_experiment,
    load_references,
    load_split,
    load_text_scores,
)


def as_stored(obj: object) -> object:
    """What a JSON document reads back as (write_json's options)."""
    return orjson.loads(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS, default=str))


def rewritten_identically(store: RunStore, tmp: Path) -> None:
    """Each artifact the store reads, written again through the store, is the same bytes."""
    copy = RunStore(tmp)
    pairs = [
        (store.predictions_path, lambda: copy.write_predictions(store.read_predictions()), copy.predictions_path),
        (store.metrics_path, lambda: copy.write_metrics(store.read_metrics() or {}), copy.metrics_path),
        (store.run_path, lambda: copy.write_run(store.read_run() or {}), copy.run_path),
        (store.references_path, lambda: copy.write_references(store.read_reference_rows()), copy.references_path),
        (store.summary_path, lambda: copy.write_summary(store.read_summary() or {}), copy.summary_path),
        (store.text_scores_path, lambda: copy.write_text_scores(store.read_text_scores()), copy.text_scores_path),
        (store.text_metrics_path, lambda: copy.write_text_metrics(store.read_text_metrics() or {}),
         copy.text_metrics_path),
    ]
    written = 0
    for original, write, again in pairs:
        if original.exists():
            write()
            assert again.read_bytes() == original.read_bytes(), original.name
            written += 1
    assert written >= 2


@pytest.fixture(scope="module")
def baseline_run(small_beauty: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("store_baseline") / "run"
    return out, run_baseline(small_beauty, "test", out)


@pytest.fixture(scope="module")
def model_runs(small_beauty: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real SmolLM2 predict run, a references run and a score folder over two test examples."""
    from recsaver.steps.predict import PredictConfig, run_predict
    from recsaver.steps.references import ReferencesConfig, run_references
    from recsaver.steps.score import run_score

    root = tmp_path_factory.mktemp("store_model")
    cache = str(root / "cache.sqlite")
    run_predict(PredictConfig(data=str(small_beauty), limit=2, max_tokens=24, cache=cache), root / "predict")
    run_references(ReferencesConfig(data=str(small_beauty), limit=2, samples=2, max_tokens=24, verify="none",
                                    cache=cache), root / "refs")
    run_score(root / "predict", root / "refs", ["bleu"], root / "score", n_resamples=20)
    return {"predict": root / "predict", "references": root / "refs", "score": root / "score"}


def test_baseline_run_reads_back_as_written(baseline_run: tuple[Path, dict], small_beauty: Path,
                                            tmp_path: Path) -> None:
    folder, metrics = baseline_run
    store = RunStore(folder)
    assert store.kind() == "baseline"
    expected = predict_baseline(load_examples(small_beauty / "test.jsonl"))
    assert store.read_predictions() == expected
    assert store.read_metrics() == as_stored(metrics)
    run = store.read_run()
    assert run is not None and run["step"] == "baseline" and run["config"]["split"] == "test"
    assert not store.incomplete() and store.has((PREDICTIONS, METRICS, RUN))
    rewritten_identically(store, tmp_path / "copy")
    assert classify(folder).kind == "rating" and classify(folder).step == "baseline"


def test_model_runs_read_back_and_name_their_kind(model_runs: dict[str, Path], tmp_path: Path) -> None:
    predict, refs, score = (RunStore(model_runs[k]) for k in ("predict", "references", "score"))
    assert [predict.kind(), refs.kind(), score.kind()] == ["predict", "references", "score"]
    assert score.read_run() is None  # score writes no run.json: its kind comes from its files

    preds = predict.read_predictions()
    assert [p.to_dict() for p in preds] == list(read_jsonl(predict.predictions_path))
    assert len(preds) == 2 and (predict.read_run() or {})["config"]["max_tokens"] == 24

    rows = refs.read_reference_rows()
    assert refs.read_references() == load_references(refs.folder) == {
        r["example_id"]: r["references"] for r in rows}
    assert load_references(refs.references_path) == refs.read_references()  # the file works as well as the folder
    assert (refs.read_summary() or {})["verify"] == "none"

    scores = score.read_text_scores()
    assert load_text_scores(score.folder) == {r["example_id"]: r for r in scores}
    assert "overall" in (score.read_text_metrics() or {})
    for name, store in (("predict", predict), ("refs", refs), ("score", score)):
        rewritten_identically(store, tmp_path / name)
    assert [classify(s.folder).kind for s in (predict, refs, score)] == ["rating", "references", "score"]


def test_an_empty_folder_is_named_and_a_missing_one_too(tmp_path: Path) -> None:
    with pytest.raises(NotARunError, match="not a run folder") as err:
        RunStore(tmp_path).kind()
    assert str(tmp_path) in str(err.value)
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        RunStore(tmp_path / "nowhere").kind()
    with pytest.raises(FileNotFoundError, match="predictions.jsonl: no predictions"):
        RunStore(tmp_path).read_predictions()
    assert RunStore(tmp_path).read_metrics() is None


def test_a_run_json_without_step_falls_back_to_the_files(baseline_run: tuple[Path, dict], tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(baseline_run[0], old)
    run = RunStore(old).read_run() or {}
    del run["step"]
    RunStore(old).write_run(run)
    assert guess_kind(old) == "predict" and RunStore(old).kind() == "predict"
    assert classify(old).kind == "rating"


def test_experiment_and_cell_folders_name_their_kind(tmp_path: Path) -> None:
    exp = RunStore(tmp_path / "exp")
    record = {"name": "x", "config": {}, "cells": [], "finished": True}
    exp.write_experiment(record)
    assert exp.kind() == EXPERIMENT_KIND and load_experiment(exp.folder) == record == exp.read_experiment()
    cell = exp.sub("beauty/data")
    cell.write_cell({"name": "beauty/data", "kind": "data"})
    assert cell.kind() == "data" and not cell.has((TRAIN, TEST, STATS))
    exp.write_significance([{"table": "table3", "p": 0.5}])
    assert exp.significance_path.name == SIGNIFICANCE and exp.has((SIGNIFICANCE,))
    exp.remove([SIGNIFICANCE, METRICS])  # what is there goes, what is not is no error
    assert not exp.has((SIGNIFICANCE,)) and exp.has((EXPERIMENT,))
    with pytest.raises(FileNotFoundError, match="not an experiment folder"):
        load_experiment(tmp_path)


def test_data_store_loads_splits(small_beauty: Path, tmp_path: Path) -> None:
    data = DataStore(small_beauty)
    test = data.load_split("test")
    assert test == load_examples(small_beauty / "test.jsonl") and load_split(small_beauty, "test", 2) == test[:2]
    assert set(data.examples_by_id(("test", "train"))) >= {e.example_id for e in test}
    assert (data.read_stats() or {}).get("examples")
    with pytest.raises(FileNotFoundError, match="no such split file"):
        data.load_split("valid")
    empty = DataStore(tmp_path)
    empty.write_split("test", [])
    with pytest.raises(ValueError, match="no examples"):
        empty.load_split("test")
    copy = DataStore(tmp_path / "copy")
    copy.write_split("test", test)
    assert copy.test_path.read_bytes() == data.test_path.read_bytes()
    assert data.split_files() == {TRAIN: data.train_path, TEST: data.test_path}
