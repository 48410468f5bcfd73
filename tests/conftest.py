"""Shared fixtures: where the real data lives, and small prepared datasets built from it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

DUMPS = {
    "beauty2023": (SHARED_DATA / "amazon2023/All_Beauty/reviews.jsonl.gz",
                   SHARED_DATA / "amazon2023/All_Beauty/meta.jsonl.gz", "beauty"),
    "movies2023": (SHARED_DATA / "amazon2023/Movies_and_TV/reviews.jsonl.gz",
                   SHARED_DATA / "amazon2023/Movies_and_TV/meta.jsonl.gz", "movies"),
    "beauty2018": (SHARED_DATA / "amazon2018/All_Beauty_5.json.gz", None, "beauty"),
}


def require_shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"real data missing: {SHARED_DATA} (tests read ../shared/data beside the repository)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prepared_dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each real dump through `prepare` with the paper's defaults, once per session."""
    from recsaver.data.prepare import PrepareConfig, prepare

    require_shared_data()
    out = {}
    for name, (reviews, meta, domain) in DUMPS.items():
        target = tmp_path_factory.mktemp(name)
        prepare(reviews, meta, target, PrepareConfig(domain=domain))
        out[name] = target
    return out
