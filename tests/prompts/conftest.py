"""Real examples for the prompt tests: both 2023 dumps through `prepare`, once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsaver.data.records import Example, load_examples

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DUMPS = {
    "beauty": ("amazon2023/All_Beauty/reviews.jsonl.gz", "amazon2023/All_Beauty/meta.jsonl.gz"),
    "movies": ("amazon2023/Movies_and_TV/reviews.jsonl.gz", "amazon2023/Movies_and_TV/meta.jsonl.gz"),
}


@pytest.fixture(scope="session")
def prompt_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[Example]]]:
    """{domain: {"train": [...], "test": [...]}} prepared from ../shared/data with the paper's defaults."""
    from recsaver.data.prepare import PrepareConfig, prepare

    if not SHARED_DATA.exists():
        pytest.fail(f"real data missing: {SHARED_DATA} (tests read ../shared/data beside the repository)")
    out = {}
    for domain, (reviews, meta) in DUMPS.items():
        target = tmp_path_factory.mktemp(f"prompts-{domain}")
        prepare(SHARED_DATA / reviews, SHARED_DATA / meta, target, PrepareConfig(domain=domain))
        out[domain] = {split: load_examples(target / f"{split}.jsonl") for split in ("train", "test")}
    return out


@pytest.fixture(params=sorted(DUMPS))
def domain(request: pytest.FixtureRequest) -> str:
    return request.param
