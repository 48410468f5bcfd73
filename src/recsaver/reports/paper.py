"""The paper's table layouts (Tables 3, 4, 5, 9, 11, 15) from the cells of an experiment folder.

Rating metrics come from each cell's metrics.json, reasoning metrics from its score
cells' text_metrics.json. Rows other than the reference row carry significance
markers from `recsaver.metrics.significance` (McNemar for the accuracies, paired
bootstrap for every other rating metric), computed here on the stored predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..metrics.rating import HIGHER_IS_BETTER, METRIC_NAMES
from ..metrics.significance import compare, marker
from ..metrics.text.registry import REGISTRY
from ..store import METRICS, RunStore
from .tables import Row, Table, Value, fmt

RATING_COLUMNS = {"binary_acc": "Binary Acc.", "binary_f1": "Binary F1", "binary_auc": "Binary AUC",
                  "multi_acc": "Multi. Acc.", "multi_auc": "Multi. AUC", "mae": "Multi. MAE",
                  "rmse": "Multi. RMSE"}

def text_columns() -> dict[str, str]:
    """Text-metric name -> column title, in table order, from the metric registry."""
    return {name: spec.label for name, spec in REGISTRY.items()}

ROW_LABELS = {("cot", "none"): "Our Method (zero-shot CoT)", ("direct", "none"): "- No Reasoning Outputs",
              ("cot", "no-review"): "- No Review", ("cot", "no-review-no-rating"): "- No Review, No Rating",
              ("cot", "no-description"): "- No Item Description", ("cot", "one-shot"): "One-shot"}
DOMAIN_NAMES = {"beauty": "Beauty", "movies": "Movies/TV"}
LOWER = tuple(RATING_COLUMNS[m] for m in METRIC_NAMES if not HIGHER_IS_BETTER[m])


class RatingRow:
    """A row of rating metrics: label, folder, and (lazily) its predictions."""

    def __init__(self, group: str, label: str, folder: Path, text: dict[str, Any] | None = None):
        self.group, self.label, self.folder, self.text = group, label, Path(folder), text
        self.store = RunStore(self.folder)
        self.metrics = self.store.read_metrics()
        self._preds: list[Any] | None = None

    @property
    def measured(self) -> dict[str, Any]:
        """metrics.json, for a row known to have one."""
        if self.metrics is None:
            raise ValueError(f"{self.folder}: no {METRICS}")
        return self.metrics

    @property
    def predictions(self) -> list[Any]:
        if self._preds is None:
            self._preds = self.store.read_predictions()
        return self._preds


def rating_table(key: str, title: str, rows: Sequence[RatingRow], *, reference: str = "baseline",
                 resamples: int = 1000, seed: int = 0, alpha: float = 0.05, with_text: bool = True, caption: str = "",
                 label_header: str = "Method") -> tuple[Table, list[dict[str, Any]]]:
    """Rows of rating metrics (+ reasoning metrics), each marked against its group's reference row."""
    rows = [r for r in rows if r.metrics is not None]
    text_cols = [m for m in text_columns() if with_text and any(r.text and m in r.text for r in rows)]
    tests: list[dict[str, Any]] = []
    out_rows = []
    ref_label = {}
    for group in dict.fromkeys(r.group for r in rows):
        members = [r for r in rows if r.group == group]
        ref = _reference(members, reference)
        ref_label[group] = ref.label if ref else None
        for r in members:
            p_values: dict[str, float] = {}
            if ref is not None and r is not ref:
                result = compare(ref.predictions, r.predictions, n_resamples=resamples, seed=seed)
                p_values = result["p_values"]
                tests.append({"group": group, "reference": ref.label, "row": r.label,
                              "reference_folder": str(ref.folder), "row_folder": str(r.folder), **result})
            values = []
            for m in METRIC_NAMES:
                v = fmt(r.measured["metrics"][m]["value"])
                p = p_values.get(m)
                values.append(Value(v.text, marker(p, alpha) if v.text != "–" else "",
                                    "" if p is None else f"p = {p:.3g} vs {ref_label[group]}"))
            values += [fmt(r.text[m]) if r.text and m in r.text else Value("–") for m in text_cols]
            out_rows.append(Row(group, r.label, tuple(values)))
    refs = sorted({v for v in ref_label.values() if v})
    notes = []
    if tests:
        notes.append(f"* p < {alpha:g}, ** p < {alpha / 5:g} against {' / '.join(refs)} in the same group: exact "
                     f"McNemar for the accuracies, paired bootstrap ({resamples} resamples, seed {seed}) for the "
                     "other rating metrics, on the examples both rows share. Hover a value for its p-value.")
    n = sorted({r.measured["n"] for r in rows})
    notes.append(f"n = {', '.join(map(str, n))} test examples per row; unparsed answers count as worst-case.")
    failed = [f"{r.label} ({r.measured['n_failed']})" for r in rows if r.measured.get("n_failed")]
    if failed:
        notes.append("INCOMPLETE: failed model calls are left out of these rows (failed examples): "
                     + ", ".join(failed) + ". Rerun the experiment to retry them.")
    columns = tuple([RATING_COLUMNS[m] for m in METRIC_NAMES] + [text_columns()[m] for m in text_cols])
    return Table(key, title, columns, tuple(out_rows), caption=caption, notes=tuple(notes),
                 lower_is_better=LOWER, label_header=label_header), tests


def _reference(rows: Sequence[RatingRow], reference: str) -> RatingRow | None:
    if not rows:
        return None
    if reference == "first":
        return rows[0]
    if reference == "baseline":
        return next((r for r in rows if r.label.startswith("Naive Baseline")), rows[0])
    return next((r for r in rows if r.label == reference), rows[0])


# --------------------------------------------------------------------------- experiment folders


class Experiment:
    """An experiment folder's cells, indexed for the table builders."""

    def __init__(self, folder: Path, record: dict[str, Any]):
        self.folder, self.record = Path(folder), record
        self.cfg = record["config"]
        self.cells = record["cells"]
        self.multi_model = len(self.cfg.get("models") or []) > 1

    def find(self, kind: str, domain: str, **labels: Any) -> list[dict[str, Any]]:
        return [c for c in self.cells if c["kind"] == kind and c["domain"] == domain
                and all(c["labels"].get(k) == v for k, v in labels.items())]

    def text_means(self, predict_cell: str, verify: str | None = None) -> dict[str, Any] | None:
        score = self.score_result(predict_cell, verify)
        return None if score is None else {m: v["mean"] for m, v in score["overall"]["metrics"].items()}

    def score_result(self, predict_cell: str, verify: str | None = None) -> dict[str, Any] | None:
        verify = verify or self.primary_verify
        if verify is None:
            return None
        return RunStore(self.folder / predict_cell / f"score-{verify}").read_text_metrics()

    @property
    def primary_verify(self) -> str | None:
        refs = self.cfg.get("references") or {}
        if not refs.get("enabled"):
            return None
        # The first verified pool listed is the config's choice (configs/table3.yaml lists the recommended mode
        # before the paper's `exact`); `none`, the unverified pool, only when nothing else is listed.
        verify = refs.get("verify") or []
        return next((v for v in verify if v != "none"), verify[0] if verify else None)

    @property
    def domains(self) -> list[str]:
        return [d["name"] for d in self.cfg["domains"]]

    def group(self, domain: str) -> str:
        return DOMAIN_NAMES.get(domain, domain)

    def model_prefix(self, model: str) -> str:
        return f"{model.split('/')[-1]}: " if self.multi_model else ""


def table3(exp: Experiment) -> tuple[Table, list[dict[str, Any]]]:
    rows: list[RatingRow] = []
    order = list(ROW_LABELS)
    for dom in exp.domains:
        g = exp.group(dom)
        for c in exp.find("baseline", dom):
            rows.append(RatingRow(g, "Naive Baseline (Avg.)", exp.folder / c["name"]))
        cells = [c for c in exp.find("predict", dom) if "student" not in c["labels"]]

        def key(c: dict[str, Any]) -> tuple[str, int]:
            pair = (c["labels"]["method"], c["labels"]["ablation"])
            return c["labels"]["model"], order.index(pair) if pair in order else len(order)

        for c in sorted(cells, key=key):
            lab = c["labels"]
            label = ROW_LABELS.get((lab["method"], lab["ablation"]), f"{lab['method']} ({lab['ablation']})")
            rows.append(RatingRow(g, exp.model_prefix(lab["model"]) + label, exp.folder / c["name"],
                                  exp.text_means(c["name"])))
    sig = exp.cfg.get("significance", {})
    models = ", ".join(exp.cfg.get("models") or [])
    return rating_table("table3", "Table 3: zero-shot ablations and the naive baseline", rows,
                        reference=sig.get("reference", "baseline"), resamples=sig.get("resamples", 1000),
                        seed=sig.get("seed", 0), alpha=sig.get("alpha", 0.05),
                        caption=f"Model: {models}. Reasoning metrics against Rec-SAVER references "
                                f"(verify: {exp.primary_verify})." if exp.primary_verify else f"Model: {models}.")


def _student_rows(exp: Experiment, dom: str, predicate: Any, label: Any) -> list[RatingRow]:
    rows = []
    for c in exp.find("predict", dom):
        lab = c["labels"]
        if "student" in lab and predicate(lab):
            rows.append(RatingRow(exp.group(dom), label(lab), exp.folder / c["name"], exp.text_means(c["name"])))
    return rows


def table4(exp: Experiment) -> tuple[Table, list[dict[str, Any]]]:
    rows: list[RatingRow] = []
    samples = min((exp.cfg.get("distill") or {}).get("samples") or [1])
    for dom in exp.domains:
        rows += _student_rows(exp, dom, lambda lab: lab["samples"] == samples and lab["filter"] == "none",
                              lambda lab: f"{lab['student'].split('/')[-1]} "
                                          f"{'✗ rating only' if lab['rating_only'] else '✓ reasoning'}")
    sig = exp.cfg.get("significance", {})
    return rating_table("table4", "Table 4: fine-tuned students, reasoning vs rating only", rows,
                        reference="first", resamples=sig.get("resamples", 1000), seed=sig.get("seed", 0),
                        alpha=sig.get("alpha", 0.05), label_header="Student / target",
                        caption=f"{samples} teacher sample(s) per example, no filter.")


def table5(exp: Experiment) -> tuple[Table, list[dict[str, Any]]]:
    rows: list[RatingRow] = []
    for dom in exp.domains:
        rows += _student_rows(exp, dom, lambda lab: not lab["rating_only"],
                              lambda lab: f"{lab['student'].split('/')[-1]} m={lab['samples']} filter={lab['filter']}")
        teacher = (exp.cfg.get("distill") or {}).get("teacher")
        for c in exp.find("predict", dom, method="cot", ablation="none"):
            if "student" not in c["labels"] and (teacher is None or c["labels"]["model"] == teacher):
                rows.append(RatingRow(exp.group(dom), f"{c['labels']['model'].split('/')[-1]} zero-shot",
                                      exp.folder / c["name"], exp.text_means(c["name"])))
    sig = exp.cfg.get("significance", {})
    return rating_table("table5", "Table 5: teacher samples x filters", rows, reference="first",
                        resamples=sig.get("resamples", 1000), seed=sig.get("seed", 0), alpha=sig.get("alpha", 0.05),
                        label_header="Student, samples, filter")


def _cot_cells(exp: Experiment, dom: str) -> list[dict[str, Any]]:
    return [c for c in exp.find("predict", dom, method="cot")]


def _cot_label(exp: Experiment, c: dict[str, Any]) -> str:
    lab = c["labels"]
    if "student" in lab:
        return f"{lab['student'].split('/')[-1]} (fine-tuned, m={lab['samples']}, {lab['filter']})"
    return f"{lab['model'].split('/')[-1]} zero-shot" + (f" ({lab['ablation']})" if lab["ablation"] != "none" else "")


def table9(exp: Experiment) -> Table:
    verify = (exp.cfg.get("references") or {}).get("verify") or []
    rows = []
    for dom in exp.domains:
        refs = {v: RunStore(exp.folder / dom / f"references-{v}").read_summary() for v in verify}
        for c in _cot_cells(exp, dom):
            scores = {v: exp.score_result(c["name"], v) for v in verify}
            if not any(scores.values()):
                continue
            group = f"{exp.group(dom)} · {_cot_label(exp, c)}"
            for m in _scored_metrics(exp):
                name = text_columns()[m]
                if any(s and m in s["overall"]["metrics"] for s in scores.values()):
                    rows.append(Row(group, name, tuple(fmt(s["overall"]["metrics"][m]["mean"]) if s and m in
                                                       s["overall"]["metrics"] else Value("–")
                                                       for s in scores.values())))
            rows.append(Row(group, "Scored examples", tuple(Value(str(s["overall"]["n_scored"])) if s else Value("–")
                                                            for s in scores.values())))
            rows.append(Row(group, "Reference coverage", tuple(fmt(r["coverage"]) if r else Value("–")
                                                               for r in refs.values())))
            rows.append(Row(group, "Mean pool size", tuple(fmt(r["mean_pool_size"], 2) if r else Value("–")
                                                           for r in refs.values())))
    columns = tuple(f"Verification: {'No' if v == 'none' else 'Yes (' + v + ')'}" for v in verify)
    return Table("table9", "Table 9: reasoning metrics with and without self-verified references", columns,
                 tuple(rows), label_header="Metric", notes=(
                     "The paper's Table 9 gives each metric's correlation with human coherence ratings; that needs the"
                     " study's ratings. Shown here: the mean metric of the same reasoning scored against pools built"
                     " with and without verification, and each pool's coverage.",))


def _scored_metrics(exp: Experiment) -> list[str]:
    """The text metrics the config scores, in the paper's column order."""
    configured = (exp.cfg.get("score") or {}).get("metrics") or list(text_columns())
    return [m for m in text_columns() if m in configured]


def table11(exp: Experiment) -> Table:
    cols = _scored_metrics(exp)
    rows = []
    for dom in exp.domains:
        for c in _cot_cells(exp, dom):
            score = exp.score_result(c["name"])
            if not score:
                continue
            for flag, label in (("correct", "Yes"), ("incorrect", "No")):
                part = score["by_correctness"][flag]
                values = tuple(fmt(part["metrics"][m]["mean"]) if m in part["metrics"] else Value("–")
                               for m in cols) + (Value(str(part["n_scored"])),)
                rows.append(Row(f"{exp.group(dom)} · {_cot_label(exp, c)}", label, values))
    return Table("table11", "Table 11: reasoning quality for correct and incorrect rating predictions",
                 tuple(text_columns()[m] for m in cols) + ("n",), tuple(rows), label_header="Correct prediction",
                 notes=("Correct means the 5-class rating equals the gold rating; examples with an empty reference"
                        " pool are excluded.",))


def table15(exp: Experiment) -> Table:
    cols = _scored_metrics(exp)
    rows = []
    stats = (("mean", "Mean"), ("min", "Min"), ("max", "Max"), ("range", "Range"), ("std", "Std-Dev"))
    for dom in exp.domains:
        for c in _cot_cells(exp, dom):
            score = exp.score_result(c["name"])
            if not score:
                continue
            metrics = score["overall"]["metrics"]
            for key, label in stats:
                rows.append(Row(f"{exp.group(dom)} · {_cot_label(exp, c)}", label,
                                tuple(fmt(metrics[m][key]) if m in metrics else Value("–") for m in cols)))
    return Table("table15", "Table 15: reasoning-metric statistics", tuple(text_columns()[m] for m in cols),
                 tuple(rows), label_header="Statistic", notes=("Std-Dev is the sample standard deviation (ddof = 1).",))


def experiment_tables(folder: Path, record: dict[str, Any]) -> tuple[list[Table], list[dict[str, Any]]]:
    """Every table the config asks for, and the significance tests behind their markers."""
    exp = Experiment(folder, record)
    builders = {"table3": table3, "table4": table4, "table5": table5, "table9": table9, "table11": table11,
                "table15": table15}
    tables, tests = [], []
    for key in record["config"].get("tables") or ["table3"]:
        built = builders[key](exp)
        if isinstance(built, tuple):
            tables.append(built[0])
            tests += built[1]
        else:
            tables.append(built)
    return tables, tests
