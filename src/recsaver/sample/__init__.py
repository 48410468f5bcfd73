"""The built-in sample: a small invented dataset in the Amazon 2023 layout, shipped in the package."""

from __future__ import annotations

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent
SAMPLE_DOMAINS = ("beauty", "movies")


def sample_files(domain: str) -> tuple[Path, Path]:
    """(reviews, meta) of the built-in sample for `domain`."""
    if domain not in SAMPLE_DOMAINS:
        raise ValueError(f"no built-in sample for domain {domain!r}; choose one of {SAMPLE_DOMAINS}")
    return SAMPLE_DIR / domain / "reviews.jsonl", SAMPLE_DIR / domain / "meta.jsonl"
