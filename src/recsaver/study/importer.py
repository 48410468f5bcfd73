"""`recsaver study import`: ratings collected elsewhere (a spreadsheet, a Label Studio CSV export).

Column names are matched case-insensitively, with aliases for the common layouts:
- who:   rater | annotator | rater_name | completed_by   (Label Studio writes `annotator`)
- item:  item_id | item | study_item, or example_id (+ model when several runs share examples)
- coherence, faithfulness (faithful), insightfulness (insight, insightful)
- error types: one list column (error_types | errors; values separated by ; , | or Label
  Studio's JSON `{"choices": [...]}`; keys like `stats` or labels like "Incorrect product
  statistics"), or one yes/no column per type (err_stats, err_info, err_arith, err_other)
- note | notes | comment
Every row must be a complete answer. All rows are checked before anything is written, every
problem is reported with its row number (as a spreadsheet shows it) and column, and the
file lands in one transaction or not at all.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answers import ERROR_KEYS, ERROR_TYPES, Answer, AnswerError, parse_answer_fields, parse_faithful
from .db import Item, StudyDB, save_many

_Bad = Callable[[str, str], None]

ALIASES: dict[str, tuple[str, ...]] = {
    "rater": ("rater", "annotator", "rater_name", "annotator_name", "completed_by"),
    "item_id": ("item_id", "item", "study_item"),
    "example_id": ("example_id",),
    "model": ("model",),
    "coherence": ("coherence",),
    "faithfulness": ("faithfulness", "faithful"),
    "insightfulness": ("insightfulness", "insight", "insightful"),
    "error_types": ("error_types", "errors", "error_type"),
    "note": ("note", "notes", "comment", "comments"),
    **{f"err_{k}": (f"err_{k}", label.lower()) for k, label in ERROR_TYPES},
}
_LABELS = {label.lower(): key for key, label in ERROR_TYPES} | {k: k for k in ERROR_KEYS} | {
    "arithmetic errors": "arith", "others": "other", "incorrect product statistic": "stats"}
MAX_REPORTED = 30


@dataclass(frozen=True)
class ImportResult:
    rows: int
    raters_created: list[str]
    replaced: int


class ImportError_(ValueError):
    """All problems of one file, one per line."""


def _columns(header: list[str], path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    lowered = {h.strip().lower(): h for h in header if h is not None}
    for field, names in ALIASES.items():
        for name in names:
            if name in lowered:
                found[field] = lowered[name]
                break
    missing = [f for f in ("rater", "coherence", "faithfulness", "insightfulness") if f not in found]
    if "item_id" not in found and "example_id" not in found:
        missing.append("item_id or example_id")
    if missing:
        raise ImportError_(f"{path}: missing column(s) {missing}; the header has {header}")
    return found


def unquote_spreadsheet(value: str) -> str:
    """Undo the quote our CSV export puts before text a spreadsheet would run as a formula."""
    return value[1:] if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@") else value


def _error_list(value: str) -> list[str]:
    """Keys from a list cell: 'stats;info', 'Arithmetic error, Other', or '{"choices": [...]}'."""
    text = (value or "").strip()
    if not text:
        return []
    if text[:1] in "{[":
        try:
            parsed: Any = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            parsed = parsed.get("choices", [])
        if isinstance(parsed, list):
            return [_LABELS.get(str(v).strip().lower(), str(v).strip()) for v in parsed]
    return [_LABELS.get(p.strip().lower(), p.strip()) for p in re.split(r"[;,|]", text) if p.strip()]


def import_csv(study: Path, path: Path, *, replace: bool = False) -> ImportResult:
    """Validate every row of PATH, then store them all in one transaction."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise ImportError_(f"{path}: empty file (no header row)")
        cols = _columns(list(reader.fieldnames), path)
        rows = list(reader)
    with StudyDB(study) as db:
        items = db.items()
        by_id = {i.item_id: i for i in items}
        by_example: dict[str, list[Item]] = {}
        for it in items:
            by_example.setdefault(it.example_id, []).append(it)
        problems: list[str] = []
        parsed: list[tuple[str, int, Answer, int]] = []
        seen: dict[tuple[str, int], int] = {}
        for k, row in enumerate(rows, 2):  # row 1 is the header, as a spreadsheet counts

            def bad(column: str, message: str, row_no: int = k) -> None:
                problems.append(f"{path}: row {row_no}, column {cols.get(column, column)!r}: {message}")

            rater = unquote_spreadsheet((row.get(cols["rater"]) or "").strip())
            if not rater:
                bad("rater", "empty rater name")
            item = _resolve_item(row, cols, by_id, by_example, bad)
            if "error_types" in cols:
                error_keys = _error_list(row.get(cols["error_types"]) or "")
            else:
                error_keys = []
                for key in ERROR_KEYS:
                    col = f"err_{key}"
                    if col in cols:
                        local: dict[str, str] = {}
                        flag = parse_faithful(row.get(cols[col]), local)
                        if local:
                            bad(col, f"must be yes/no or 1/0, got {row.get(cols[col])!r}")
                        elif flag:
                            error_keys.append(key)
            values = {name: (row.get(cols[name]) if name in cols else None)
                      for name in ("coherence", "faithfulness", "insightfulness", "note")}
            values["note"] = unquote_spreadsheet(values["note"] or "")
            try:
                answer = parse_answer_fields(values, error_keys)
            except AnswerError as e:
                for field, message in e.errors.items():
                    bad(field if field != "errors" else ("error_types" if "error_types" in cols else "err_*"), message)
                continue
            if not answer.complete:
                _explain_incomplete(answer, bad)
                continue
            if rater and item is not None:
                pair = (rater, item.item_id)
                if pair in seen:
                    bad("rater", f"rater {rater!r} already rated item {item.item_id} in row {seen[pair]}")
                    continue
                seen[pair] = k
                parsed.append((rater, item.item_id, answer, k))
        existing = {(r["rater"], r["item_id"]) for r in db.answer_rows()}
        clashes = [(r, i, k) for r, i, _, k in parsed if (r, i) in existing]
        if clashes and not replace:
            for r, i, k in clashes:
                problems.append(f"{path}: row {k}: rater {r!r} already has an answer for item {i} "
                                "(use --replace to overwrite)")
        if problems:
            more = f"\n... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
            raise ImportError_(f"{len(problems)} problem(s), nothing imported:\n" + "\n".join(
                problems[:MAX_REPORTED]) + more)
        created = []
        rater_ids: dict[str, int] = {}
        for name in dict.fromkeys(r for r, _, _, _ in parsed):
            found = db.rater_by_name(name)
            if found is None:
                found, _, _ = db.add_rater(name, max_items=0, with_token=False, source="import")
                created.append(name)
            rater_ids[name] = found.rater_id
        save_many(db, [(rater_ids[r], i, a) for r, i, a, _ in parsed], source="import")
    return ImportResult(len(parsed), created, len(clashes))


def _resolve_item(row: dict[str, str], cols: dict[str, str], by_id: dict[int, Item],
                  by_example: dict[str, list[Item]], bad: _Bad) -> Item | None:
    if "item_id" in cols and (row.get(cols["item_id"]) or "").strip():
        raw = row[cols["item_id"]].strip()
        if not raw.isdigit() or int(raw) not in by_id:
            bad("item_id", f"no study item {raw!r} (ids run 1..{max(by_id, default=0)})")
            return None
        return by_id[int(raw)]
    if "example_id" not in cols:
        bad("item_id", "empty item id")
        return None
    eid = (row.get(cols["example_id"]) or "").strip()
    matches = by_example.get(eid, [])
    if "model" in cols and (row.get(cols["model"]) or "").strip():
        matches = [i for i in matches if i.model == row[cols["model"]].strip()]
    if not matches:
        bad("example_id", f"no study item for example {eid!r}")
        return None
    if len(matches) > 1:
        bad("example_id", f"example {eid!r} is in {len(matches)} study items (runs); add an item_id or model column")
        return None
    return matches[0]


def _explain_incomplete(answer: Answer, bad: _Bad) -> None:
    for field in ("coherence", "insightfulness"):
        if getattr(answer, field) is None:
            bad(field, "empty; every imported row must be a complete answer")
    if answer.faithful is None:
        bad("faithfulness", "empty; every imported row must be a complete answer")
    elif not answer.faithful and not answer.errors:
        bad("error_types", "an unfaithful answer needs at least one error type (use 'other' if none fits)")
