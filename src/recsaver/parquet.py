"""`--format parquet`: a run's JSONL tables also as Parquet, and the row shaping `recsaver export` shares.

The JSONL stays each run's record (resume and every reader use it); the Parquet file beside it holds the
same rows. Every row gets every column (None where a row had no such key, e.g. `thinking` of a
non-reasoning answer), since an Arrow table has one schema; nested fields stay nested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .data.records import read_jsonl
from .store import EXAMPLES, PREDICTIONS, REFERENCES, SAMPLES, TEST, TEXT_SCORES, TRAIN, TRAIN_LOG

# The JSONL tables a step writes; `--format parquet` also writes each as <stem>.parquet beside it.
PARQUET_TABLES = (PREDICTIONS, REFERENCES, TEXT_SCORES, SAMPLES, EXAMPLES, TRAIN, TEST, TRAIN_LOG)
OUTPUT_FORMATS = ("jsonl", "parquet")


def uniform_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row with every column (first-seen order), None where a row had none: one Arrow schema."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return [{c: row.get(c) for c in columns} for row in rows]


def write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    """One Parquet file of `rows` (pyarrow, a core dependency); nested fields stay nested."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(uniform_rows(rows)), str(tmp))
    tmp.replace(path)  # atomic, like every other artifact: a killed write leaves no half file


def write_parquet_tables(folder: Path, recursive: bool = False) -> list[Path]:
    """`--format parquet`: <stem>.parquet beside each JSONL table of PARQUET_TABLES in `folder` (and, with
    `recursive`, in every folder under it: an experiment's cells). The JSONL stays the run's record (resume,
    readers); the Parquet file holds the same rows. Returns the files written."""
    found = [p for name in PARQUET_TABLES for p in (folder.rglob(name) if recursive else [folder / name])
             if p.is_file()]
    written = []
    for jsonl in sorted(found):
        target = jsonl.with_suffix(".parquet")
        write_parquet(list(read_jsonl(jsonl)), target)
        written.append(target)
    return written


def check_format(value: str) -> str:
    if value not in OUTPUT_FORMATS:
        raise ValueError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}; got {value!r}")
    return value
