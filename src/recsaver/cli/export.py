"""`recsaver export RUN --hf DIR --parquet FILE`: a run's records as a Hugging Face dataset and/or Parquet.

The records are the run folder's table: predictions.jsonl (predict, baseline), references.jsonl
(references) or text_scores.jsonl (score), read through `RunStore`. Nested fields (probs, candidates,
references) stay nested. Every row gets every column (None where a row had no such key, e.g.
`thinking` of a non-reasoning answer), since Arrow tables have one schema. `datasets` is imported only
here, so the rest of the CLI stays fast without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..parquet import uniform_rows, write_parquet
from .common import friendly_errors, out_console


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def run_records(run: Path) -> tuple[str, list[dict[str, Any]]]:
    """(file name, rows) of the records table the run folder holds: predictions, references or text scores."""
    from ..data.records import read_jsonl
    from ..store import RunStore

    store = RunStore(Path(run))
    if not store.folder.is_dir():
        raise FileNotFoundError(f"{store.folder}: no such run folder")
    for path in (store.predictions_path, store.references_path, store.text_scores_path):
        if path.exists():
            return path.name, list(read_jsonl(path))
    raise FileNotFoundError(f"{store.folder}: no records to export (expected {store.predictions_path.name}, "
                            f"{store.references_path.name} or {store.text_scores_path.name})")


def write_hf(rows: list[dict[str, Any]], folder: Path) -> None:
    """A `datasets.load_from_disk`-loadable folder of `rows`."""
    try:
        import datasets
    except ImportError:
        raise ValueError("--hf needs the Hugging Face `datasets` package: pip install datasets "
                         "(or pip install 'recsaver[dev]')") from None
    datasets.Dataset.from_list(uniform_rows(rows)).save_to_disk(str(folder))


@friendly_errors
def export(
    run: Path = typer.Argument(..., help="Run folder: predict, baseline, references or score."),
    hf: Path | None = typer.Option(None, "--hf", help="Write a Hugging Face `datasets` folder here "
                                                      "(datasets.load_from_disk); needs `pip install datasets`."),
    parquet: Path | None = typer.Option(None, "--parquet", help="Write one Parquet file here."),
) -> None:
    """A run's records (predictions, references or text scores) as a `datasets` folder and/or a Parquet file."""
    if hf is None and parquet is None:
        raise ValueError("nothing to write: give --hf DIR and/or --parquet FILE")
    name, rows = run_records(run)
    if not rows:
        raise ValueError(f"{Path(run) / name}: no rows to export")
    if hf is not None:
        write_hf(rows, hf)
        out_console.print(f"wrote {len(rows)} rows of {name} to {hf} (datasets.load_from_disk)", highlight=False)
    if parquet is not None:
        write_parquet(rows, parquet)
        out_console.print(f"wrote {len(rows)} rows of {name} to {parquet}", highlight=False)
