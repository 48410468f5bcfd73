"""Every artifact of a run folder: its file name, what it holds, and its typed read and write.

The file names below are the only place they are spelled; steps, report, study and experiment
go through `RunStore` (one run, references, score, teacher, SFT or experiment folder) and
`DataStore` (one prepared-data folder). The formats are those the steps always wrote:
JSONL through `write_jsonl` (one compact object a line) and JSON through `write_json`
(pretty, atomic), so a file written here is byte-identical to one a step wrote.

Readers of a JSON document return None when the file is absent (a report shows what there
is); readers of a JSONL table raise FileNotFoundError naming the file and the command that
writes it.

A folder's kind comes from `run.json`'s `step` (predict, baseline, references,
distill-sample, distill-build, finetune), an experiment folder's from `experiment.json`, an
experiment cell's from its `cell.json`; only a folder with none of these (a score folder, which
writes no run.json, or a run written before `step` existed) is recognised by its files, in
`guess_kind`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from .data.records import Example, Prediction, load_examples, load_predictions, read_jsonl, write_json, write_jsonl

# ---- file names -----------------------------------------------------------------------------------

PREDICTIONS = "predictions.jsonl"  # predict, baseline: one Prediction a line
METRICS = "metrics.json"  # predict, baseline, finetune: rating metrics with CIs
RUN = "run.json"  # every step but score: step, status, config, data fingerprint, versions
REFERENCES = "references.jsonl"  # references: example_id, rating, references (the pool), candidates
SUMMARY = "summary.json"  # references (coverage, pool sizes), distill-sample (teacher summary)
TEXT_SCORES = "text_scores.jsonl"  # score: example_id, n_refs, correct, one value per metric
TEXT_METRICS = "text_metrics.json"  # score: aggregates overall and by correctness
SAMPLES = "samples.jsonl"  # distill-sample: teacher samples; predict with --samples > 1: every generation
EXAMPLES = "examples.jsonl"  # distill-sample: the examples as the teacher saw them
TRAIN = "train.jsonl"  # prepared data: Examples; distill-build: SFT rows
TEST = "test.jsonl"  # prepared data: Examples
STATS = "stats.json"  # prepared data, distill-build
CELL = "cell.json"  # an experiment cell: name, kind, domain, labels, hash, result
EXPERIMENT = "experiment.json"  # an experiment folder: config, cells and their status
SIGNIFICANCE = "significance.json"  # an experiment folder: the paper tables' significance tests
FINETUNE_CONFIG = "finetune_config.json"  # finetune: the resolved config
TRAIN_LOG = "train_log.jsonl"  # finetune: one line per optimizer step

EXPERIMENT_KIND = "experiment"
RATING_KINDS = ("predict", "baseline")  # folders with predictions.jsonl and (unless all failed) metrics.json


class NotARunError(ValueError):
    """A folder that holds no run the store recognises (the message names the folder)."""


def _json(path: Path) -> Any:
    return orjson.loads(path.read_bytes()) if path.exists() else None


def _need(path: Path, what: str, command: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no {what} (run `{command}` first)")
    return path


# ---- loaders (the names the steps have always imported) ---------------------------------------------


def load_split(data: Path, split: str, limit: int | None = None) -> list[Example]:
    """The examples of DATA/SPLIT.jsonl (the first `limit`), never empty."""
    return DataStore(data).load_split(split, limit)


def references_file(refs: Path) -> Path:
    """REFS/references.jsonl for a references folder, or REFS itself for a file."""
    refs = Path(refs)
    return refs / REFERENCES if refs.is_dir() else refs


def load_references(refs: Path) -> dict[str, list[str]]:
    """example_id -> its reference pool, from a references folder (or its references.jsonl)."""
    path = _need(references_file(refs), "references", "recsaver references")
    return {row["example_id"]: list(row["references"]) for row in read_jsonl(path)}


def predictions_file(run: Path) -> Path:
    """RUN/predictions.jsonl for a run folder, or RUN itself for a file; it must exist."""
    run = Path(run)
    return _need(run / PREDICTIONS if run.is_dir() else run, "predictions", "recsaver predict")


def load_text_scores(scores: Path) -> dict[str, dict[str, Any]]:
    """example_id -> its text_scores.jsonl row, from a score folder (or the file)."""
    scores = Path(scores)
    path = _need(scores / TEXT_SCORES if scores.is_dir() else scores, "text scores", "recsaver score")
    return {row["example_id"]: row for row in read_jsonl(path)}


def load_experiment(folder: Path) -> dict[str, Any]:
    """An experiment folder's record (experiment.json)."""
    path = Path(folder) / EXPERIMENT
    if not path.exists():
        raise FileNotFoundError(f"{path}: not an experiment folder (run `recsaver experiment run` first)")
    record: dict[str, Any] = orjson.loads(path.read_bytes())
    return record


# ---- kinds ----------------------------------------------------------------------------------------


def guess_kind(folder: Path) -> str | None:
    """The kind of a folder without a recorded one, from its files (score folders write no run.json;
    runs written before run.json had `step`); None when the files say nothing."""
    folder = Path(folder)
    if (folder / TEXT_METRICS).exists() and not (folder / PREDICTIONS).exists():
        return "score"
    if (folder / REFERENCES).exists() and (folder / SUMMARY).exists():
        return "references"
    if (folder / PREDICTIONS).exists():
        return "predict"
    return None


# ---- one prepared-data folder -----------------------------------------------------------------------


class DataStore:
    """DATA/train.jsonl, DATA/test.jsonl (Examples) and DATA/stats.json, as `recsaver data prepare` writes."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def split_path(self, split: str) -> Path:
        return self.folder / f"{split}.jsonl"

    @property
    def train_path(self) -> Path:
        return self.folder / TRAIN

    @property
    def test_path(self) -> Path:
        return self.folder / TEST

    @property
    def stats_path(self) -> Path:
        return self.folder / STATS

    def split_files(self) -> dict[str, Path]:
        """train.jsonl and test.jsonl by name (what an experiment cell's hash takes from prepared data)."""
        return {TRAIN: self.train_path, TEST: self.test_path}

    def load_split(self, split: str, limit: int | None = None) -> list[Example]:
        """The split's examples (the first `limit`); a missing or empty split is an error."""
        source = self.split_path(split)
        if not source.exists():
            raise FileNotFoundError(f"{source}: no such split file (run `recsaver data prepare` first)")
        examples = load_examples(source)
        if not examples:
            raise ValueError(f"{source}: no examples")
        return examples[:limit] if limit else examples

    def examples_by_id(self, splits: Iterable[str]) -> dict[str, Example]:
        """example_id -> Example over the splits that exist, the first split's copy winning."""
        found: dict[str, Example] = {}
        for split in dict.fromkeys(splits):
            if self.split_path(split).exists():
                for ex in load_examples(self.split_path(split)):
                    found.setdefault(ex.example_id, ex)
        return found

    def write_split(self, split: str, examples: Iterable[Example]) -> int:
        return write_jsonl(self.split_path(split), (e.to_dict() for e in examples))

    def read_stats(self) -> dict[str, Any] | None:
        return _json(self.stats_path)

    def write_stats(self, stats: dict[str, Any]) -> None:
        write_json(self.stats_path, stats)


# ---- one run folder ---------------------------------------------------------------------------------


class RunStore:
    """The artifacts of one run folder: paths, typed readers and writers, and the folder's kind."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def sub(self, name: str) -> RunStore:
        """A folder inside this one (an experiment's cell, a predict cell's score folder)."""
        return RunStore(self.folder / name)

    # -- paths ----------------------------------------------------------------------------------

    @property
    def predictions_path(self) -> Path:
        return self.folder / PREDICTIONS

    @property
    def metrics_path(self) -> Path:
        return self.folder / METRICS

    @property
    def run_path(self) -> Path:
        return self.folder / RUN

    @property
    def references_path(self) -> Path:
        return self.folder / REFERENCES

    @property
    def summary_path(self) -> Path:
        return self.folder / SUMMARY

    @property
    def text_scores_path(self) -> Path:
        return self.folder / TEXT_SCORES

    @property
    def text_metrics_path(self) -> Path:
        return self.folder / TEXT_METRICS

    @property
    def samples_path(self) -> Path:
        return self.folder / SAMPLES

    @property
    def examples_path(self) -> Path:
        return self.folder / EXAMPLES

    @property
    def train_path(self) -> Path:
        """SFT rows of a distill-build folder."""
        return self.folder / TRAIN

    @property
    def stats_path(self) -> Path:
        return self.folder / STATS

    @property
    def cell_path(self) -> Path:
        return self.folder / CELL

    @property
    def experiment_path(self) -> Path:
        return self.folder / EXPERIMENT

    @property
    def significance_path(self) -> Path:
        return self.folder / SIGNIFICANCE

    @property
    def data(self) -> DataStore:
        """This folder as prepared data (an experiment's data cell)."""
        return DataStore(self.folder)

    # -- kind -----------------------------------------------------------------------------------

    def kind(self) -> str:
        """run.json's step, else "experiment" (experiment.json), else cell.json's kind, else `guess_kind`."""
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: no such run folder")
        run = self.read_run()
        if run is not None and run.get("step"):
            return str(run["step"])
        if self.experiment_path.exists():
            return EXPERIMENT_KIND
        cell = self.read_cell()
        if cell is not None and cell.get("kind"):
            return str(cell["kind"])
        guessed = guess_kind(self.folder)
        if guessed is None:
            raise NotARunError(f"{self.folder}: not a run folder (expected run.json with a step, experiment.json, "
                               f"cell.json, or the files of a run: {PREDICTIONS}, {REFERENCES} + {SUMMARY}, "
                               f"or {TEXT_METRICS})")
        return guessed

    def incomplete(self) -> bool:
        """Whether run.json says some of the run's model calls failed."""
        run = self.read_run()
        return run is not None and run.get("status") == "incomplete"

    # -- run.json, metrics.json -----------------------------------------------------------------

    def read_run(self) -> dict[str, Any] | None:
        return _json(self.run_path)

    def write_run(self, run: dict[str, Any]) -> None:
        """run.json as built by `steps.runs.write_run` (which adds versions and the status block)."""
        write_json(self.run_path, run)

    def read_metrics(self) -> dict[str, Any] | None:
        return _json(self.metrics_path)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json(self.metrics_path, metrics)

    # -- predictions ----------------------------------------------------------------------------

    def read_predictions(self) -> list[Prediction]:
        return load_predictions(_need(self.predictions_path, "predictions", "recsaver predict"))

    def write_predictions(self, predictions: Iterable[Prediction]) -> int:
        return write_jsonl(self.predictions_path, (p.to_dict() for p in predictions))

    # -- references -----------------------------------------------------------------------------

    def read_reference_rows(self) -> list[dict[str, Any]]:
        return list(read_jsonl(_need(self.references_path, "references", "recsaver references")))

    def read_references(self) -> dict[str, list[str]]:
        """example_id -> reference pool."""
        return load_references(self.references_path)

    def write_references(self, rows: Iterable[dict[str, Any]]) -> int:
        return write_jsonl(self.references_path, rows)

    def read_summary(self) -> dict[str, Any] | None:
        return _json(self.summary_path)

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.summary_path, summary)

    # -- scores ---------------------------------------------------------------------------------

    def read_text_scores(self) -> list[dict[str, Any]]:
        return list(read_jsonl(_need(self.text_scores_path, "text scores", "recsaver score")))

    def write_text_scores(self, rows: Iterable[dict[str, Any]]) -> int:
        return write_jsonl(self.text_scores_path, rows)

    def read_text_metrics(self) -> dict[str, Any] | None:
        return _json(self.text_metrics_path)

    def write_text_metrics(self, result: dict[str, Any]) -> None:
        write_json(self.text_metrics_path, result)

    # -- teacher (distill sample) and SFT (distill build) ---------------------------------------

    def read_samples(self) -> list[dict[str, Any]]:
        return list(read_jsonl(_need(self.samples_path, "samples", "recsaver distill sample")))

    def write_samples(self, rows: Iterable[dict[str, Any]]) -> int:
        return write_jsonl(self.samples_path, rows)

    def read_examples(self) -> list[Example]:
        return load_examples(_need(self.examples_path, "examples", "recsaver distill sample"))

    def write_examples(self, examples: Iterable[Example]) -> int:
        return write_jsonl(self.examples_path, (e.to_dict() for e in examples))

    def read_train_rows(self) -> list[dict[str, Any]]:
        return list(read_jsonl(_need(self.train_path, "SFT rows", "recsaver distill build")))

    def write_train_rows(self, rows: Iterable[dict[str, Any]]) -> int:
        return write_jsonl(self.train_path, rows)

    def read_stats(self) -> dict[str, Any] | None:
        return _json(self.stats_path)

    def write_stats(self, stats: dict[str, Any]) -> None:
        write_json(self.stats_path, stats)

    # -- experiments ----------------------------------------------------------------------------

    def read_cell(self) -> dict[str, Any] | None:
        """cell.json, or None when absent or unreadable (a cell killed while writing it is not done)."""
        try:
            return _json(self.cell_path)
        except orjson.JSONDecodeError:
            return None

    def write_cell(self, cell: dict[str, Any]) -> None:
        write_json(self.cell_path, cell)

    def read_experiment(self) -> dict[str, Any]:
        return load_experiment(self.folder)

    def write_experiment(self, record: dict[str, Any]) -> None:
        write_json(self.experiment_path, record)

    def write_significance(self, tests: list[dict[str, Any]]) -> None:
        write_json(self.significance_path, tests)

    def remove(self, names: Iterable[str]) -> None:
        """Delete the named artifacts that are here (a stale metrics.json, a failed cell's old outputs)."""
        for name in names:
            (self.folder / name).unlink(missing_ok=True)

    def has(self, names: Iterable[str]) -> bool:
        """Whether every named artifact is here (a cell's resume check with its step's `outputs`)."""
        return all((self.folder / name).exists() for name in names)

