"""What `recsaver view` shows, read once from the run folders through the run store.

Every folder given (an experiment folder stands for its cells) becomes a `ViewRun`: its kind
(predict, baseline, references, score), its records by example_id, and the per-example text
metrics that belong to it. The list the browser pages through is one `Row` per (run, example):
small, flat values only, so filtering and sorting 10,000 rows on the server stays cheap and a
page of JSON stays small; the full records (reasoning, candidates) are read per example.

Text metrics join a predict run by example_id from the text_scores.jsonl in its own folder
(`recsaver score --out RUN`) and from each score folder given beside it that lives inside it (an
experiment's `score-*` cells); a score folder with no such run among the inputs is a run of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.records import read_jsonl
from ..store import EXPERIMENT_KIND, RATING_KINDS, DataStore, NotARunError, RunStore, load_experiment

VIEW_KINDS = (*RATING_KINDS, "references", "score")
# text_scores.jsonl columns that are not metrics
_SCORE_KEYS = frozenset({"example_id", "correct", "rating"})  # rating: the one `score --outputs` read


@dataclass
class Row:
    """One (run, example) line of the list: the values the list filters and sorts on."""

    run: int
    example_id: str
    domain: str
    gold: int | None
    pred: int | None
    correct: bool | None
    status: str
    metrics: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self, label: str) -> dict[str, Any]:
        return {"run": self.run, "run_label": label, "example_id": self.example_id, "domain": self.domain,
                "gold": self.gold, "pred": self.pred, "correct": self.correct, "status": self.status,
                "metrics": self.metrics}


@dataclass
class ViewRun:
    """One run folder as the viewer holds it."""

    index: int
    label: str
    folder: Path
    kind: str  # predict | baseline | references | score
    run: dict[str, Any] | None
    domain: str
    records: dict[str, dict[str, Any]]  # example_id -> its predictions.jsonl / references.jsonl / text_scores row
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)  # example_id -> metric -> value
    score_sources: list[str] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        return dict((self.run or {}).get("config") or {})

    @property
    def title(self) -> str:
        """What the run is, in a few words (model, method, ablation; verify mode for references)."""
        cfg = self.config
        model = str(cfg.get("model", "")).split("/")[-1]
        if self.kind == "predict":
            bits = [model, cfg.get("method", ""), "" if cfg.get("ablation") in (None, "none") else cfg["ablation"]]
        elif self.kind == "references":
            bits = ["references", model, f"verify {cfg['verify']}" if cfg.get("verify") else ""]
        else:
            bits = [self.kind]
        return " ".join(str(b) for b in bits if b)


def prediction_status(record: dict[str, Any]) -> str:
    """ok, forced (rating read from P(1..5) after an appended header), unparsed (no rating) or failed."""
    if record.get("status") == "failed":
        return "failed"
    if record.get("rating_pred") is None:
        return "unparsed"
    return "forced" if record.get("rating_source") == "forced" else "ok"


def data_folder(folder: Path, run: dict[str, Any] | None) -> tuple[Path | None, str | None]:
    """(the run's prepared-data folder if it is still there, the path run.json records).

    run.json keeps the path as it was given, often relative to where the command ran; it is tried
    as given and below each folder above the run (an experiment's cells name `OUT/domain/data`)."""
    raw = ((run or {}).get("config") or {}).get("data")
    if not raw:
        return None, None
    path = Path(str(raw))
    tries = [path] if path.is_absolute() else [path, *(up / path for up in Path(folder).resolve().parents)]
    return next((p for p in tries if (p / "test.jsonl").exists() or (p / "train.jsonl").exists()), None), str(raw)


def _domain(store: RunStore, run: dict[str, Any] | None) -> str:
    cell = store.read_cell()
    if cell and cell.get("domain"):
        return str(cell["domain"])
    data, _ = data_folder(store.folder, run)
    stats = DataStore(data).read_stats() if data else None
    return str((stats or {}).get("domain") or "?")


def expand(paths: Sequence[Path]) -> list[tuple[Path, str, str]]:
    """(folder, label, kind) for every run to show; an experiment folder gives its finished cells."""
    found: list[tuple[Path, str, str]] = []
    for path in paths:
        store = RunStore(Path(path))
        kind = store.kind()
        if kind == EXPERIMENT_KIND:
            record = load_experiment(store.folder)
            for cell in record.get("cells", []):
                sub = store.sub(cell["name"])
                if cell.get("kind") in VIEW_KINDS and sub.cell_path.exists():
                    found.append((sub.folder, f"{record.get('name', store.folder.name)}/{cell['name']}", cell["kind"]))
        elif kind in VIEW_KINDS:
            found.append((store.folder, str(path), kind))
        else:
            raise NotARunError(f"{store.folder}: a {kind} folder, not one the viewer shows (a predict, baseline, "
                               "references, score or experiment folder)")
    if not found:
        raise NotARunError(f"no finished run among {', '.join(str(p) for p in paths)}")
    return found


def _metrics(row: dict[str, Any]) -> dict[str, float | None]:
    return {k: v for k, v in row.items() if k not in _SCORE_KEYS and (v is None or isinstance(v, int | float))
            and not isinstance(v, bool)}


def _read_scores(store: RunStore) -> dict[str, dict[str, Any]]:
    return {row["example_id"]: row for row in store.read_text_scores()}


def load_run(index: int, folder: Path, label: str, kind: str) -> ViewRun:
    """One folder's records, keyed by example_id, in file order."""
    store = RunStore(folder)
    run = store.read_run()
    if kind in RATING_KINDS:
        records = {r["example_id"]: r for r in read_jsonl(store.predictions_path)}
    elif kind == "references":
        records = {r["example_id"]: r for r in store.read_reference_rows()}
    else:
        records = _read_scores(store)
    domain = _domain(store, run)
    if kind == "score" and domain == "?":  # no run.json: the domain of the references run it was scored against
        refs = RunStore(Path(str((store.read_text_metrics() or {}).get("references") or store.folder)))
        domain = _domain(refs, refs.read_run()) if refs.folder.is_dir() else domain
    view = ViewRun(index, label, store.folder, kind, run, domain, records)
    if kind in RATING_KINDS and store.text_scores_path.exists():
        attach_scores(view, store, own=True)
    elif kind == "score":
        view.scores = {k: _metrics(r) for k, r in records.items()}
        view.score_sources.append(str(store.folder))
    return view


def attach_scores(view: ViewRun, score: RunStore, own: bool = False) -> None:
    """Join a score folder's per-example metrics to a rating run; a metric name the run already has from
    another score folder is prefixed with this folder's name (two reference pools, two BLEUs)."""
    taken = {m for values in view.scores.values() for m in values}
    prefix = "" if own else score.folder.name + ":"
    for example_id, row in _read_scores(score).items():
        values = view.scores.setdefault(example_id, {})
        for name, value in _metrics(row).items():
            values[name if name not in taken else prefix + name] = value
    view.score_sources.append(str(score.folder))


def _rows(view: ViewRun, gold_from: dict[str, int]) -> Iterable[Row]:
    for example_id, r in view.records.items():
        metrics = view.scores.get(example_id, {})
        if view.kind in RATING_KINDS:
            pred = r.get("rating_pred")
            failed = r.get("status") == "failed"
            yield Row(view.index, example_id, view.domain, r.get("rating_true"), pred,
                      None if failed else pred == r.get("rating_true"), prediction_status(r), metrics)
        elif view.kind == "references":
            pool = len(r.get("references") or [])
            status = "pooled" if pool else ("failed" if r.get("failed_calls") else "empty")
            yield Row(view.index, example_id, view.domain, r.get("rating"), None, None, status,
                      {"pool_size": pool, **metrics})
        else:
            yield Row(view.index, example_id, view.domain, gold_from.get(example_id), r.get("rating"),
                      r.get("correct"), "scored", metrics)


class Viewer:
    """Every run given, the list rows over all of them, and one example across the runs."""

    def __init__(self, paths: Sequence[Path]):
        self.runs: list[ViewRun] = []
        loose_scores: list[tuple[Path, str]] = []
        for folder, label, kind in expand(paths):
            if kind == "score":
                loose_scores.append((folder, label))
            else:
                self.runs.append(load_run(len(self.runs), folder, label, kind))
        by_folder = {v.folder.resolve(): v for v in self.runs if v.kind in RATING_KINDS}
        for folder, label in loose_scores:
            parent = by_folder.get(folder.resolve().parent)
            if parent is not None:
                attach_scores(parent, RunStore(folder))
            else:
                self.runs.append(load_run(len(self.runs), folder, label, "score"))
        gold = {k: int(r["rating"]) for v in self.runs if v.kind == "references" for k, r in v.records.items()}
        gold.update({k: int(r["rating_true"]) for v in self.runs if v.kind in RATING_KINDS
                     for k, r in v.records.items()})
        self.rows: list[Row] = [row for v in self.runs for row in _rows(v, gold)]
        self.metric_names: list[str] = sorted({m for row in self.rows for m in row.metrics})
        self.domains: list[str] = sorted({row.domain for row in self.rows})
        self.statuses: list[str] = sorted({row.status for row in self.rows})
        self._examples: dict[tuple[Path, str], dict[str, Any]] = {}

    def run(self, index: int) -> ViewRun:
        if not 0 <= index < len(self.runs):
            raise KeyError(f"no run {index}")
        return self.runs[index]

    def runs_with(self, example_id: str) -> list[ViewRun]:
        return [v for v in self.runs if example_id in v.records]

    def examples(self, data: Path, split: str) -> dict[str, Any]:
        """example_id -> Example of DATA/SPLIT.jsonl, read once per (data, split) while the viewer runs."""
        key = (data.resolve(), split)
        if key not in self._examples:
            self._examples[key] = DataStore(data).examples_by_id([split])
        return self._examples[key]
