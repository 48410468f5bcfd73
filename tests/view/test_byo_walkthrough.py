"""Issue 20's bring-your-own run, end to end through the CLI and a real Chromium: your interactions as a CSV
(renamed columns, a 10-point scale, a separate items table), `data import`, Rec-SAVER references with the default
model (SmolLM2), your system's explanations scored with `score --outputs`, and both opened in `recsaver view`.
The screenshot goes to tmp_path (and to $RECSAVER_SCREENSHOTS when set)."""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from recsaver.cli import app

from ..conftest import DUMPS, require_shared_data
from .conftest import read_jsonl, serve
from .test_browser import CHROMIUM, browser_or_skip, shot

pytestmark = pytest.mark.slow


def write_your_tables(folder: Path) -> tuple[Path, Path]:
    """The Beauty 2023 reviews and items as another recommender would keep them: CSV, own column names, 1-10."""
    require_shared_data()
    reviews, meta, _ = DUMPS["beauty2023"]
    interactions, items = folder / "ratings.csv", folder / "items.csv"
    with interactions.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["uid", "product", "stars", "when", "headline", "body"])
        for line in gzip.open(reviews):
            r = orjson.loads(line)
            out.writerow([r["user_id"], r["parent_asin"], int(r["rating"]) * 2, r["timestamp"], r["title"], r["text"]])
    with items.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["product", "title", "brand", "categories", "description", "price"])
        for line in gzip.open(meta):
            m = orjson.loads(line)
            out.writerow([m["parent_asin"], m.get("title") or "", m.get("store") or "",
                          json.dumps(m.get("categories") or []), " ".join(m.get("description") or []),
                          m.get("price") if isinstance(m.get("price"), int | float) else ""])
    return interactions, items


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_import_references_score_and_view(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    interactions, items = write_your_tables(tmp_path)
    data, refs, scores = tmp_path / "data", tmp_path / "refs", tmp_path / "scores"
    cli("data", "import", "--interactions", str(interactions), "--items", str(items),
        "--map", "user_id=uid,item_id=product,rating=stars,timestamp=when,review_title=headline,review_text=body",
        "--rating-scale", "1,10", "--domain", "beauty", "--train-per-label", "2", "--test-per-label", "1",
        "--out", str(data), "--no-progress")
    stats = json.loads((data / "stats.json").read_text())
    assert stats["ratings"]["scale"] == [1, 10] and len(read_jsonl(data / "test.jsonl")) == 5

    cli("references", "--data", str(data), "--limit", "2", "--samples", "2", "--max-tokens", "40", "--verify", "none",
        "--cache", str(tmp_path / "c.sqlite"), "--out", str(refs), "--no-progress")
    pools = {r["example_id"]: r for r in read_jsonl(refs / "references.jsonl")}
    assert len(pools) == 2 and all(r["references"] for r in pools.values())

    # Your recommender's explanations, one per example, plus one for an example with no pool.
    mine = tmp_path / "my_explanations.jsonl"
    mine.write_text("".join(json.dumps({"id": eid, "why": "The user keeps buying gentle skin care, and this item is "
                                        "a gentle cleanser from a brand they rated before.", "stars": 4}) + "\n"
                            for eid in [*pools, "an-id-with-no-pool"]))
    said = cli("score", "--outputs", str(mine), "--id-field", "id", "--text-field", "why", "--rating-field", "stars",
               "--references", str(refs), "--metrics", "bleu,rouge1", "--resamples", "50", "--out", str(scores))
    assert "an-id-with-no-pool" in said
    scored = read_jsonl(scores / "text_scores.jsonl")
    assert [s["example_id"] for s in scored] == list(pools) and all(0 <= s["rouge1"] <= 1 for s in scored)

    eid = next(iter(pools))
    with browser_or_skip() as p, contextlib.contextmanager(serve)([refs, scores]) as url:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            expect(page.locator("#rows tbody tr")).to_have_count(4)  # 2 examples x (references, scores)
            page.locator(f"#rows tbody tr[data-example-id='{eid}'] a.example-link").first.click()
            expect(page.locator("#example-id")).to_have_text(eid)
            panels = page.locator(".run-panel")
            expect(panels).to_have_count(2)
            expect(panels.nth(0).locator(".candidate")).to_have_count(2)
            expect(panels.nth(1).locator(".reasoning")).to_contain_text("gentle cleanser")
            expect(panels.nth(1)).to_contain_text("rouge1")
            expect(panels.nth(1).locator(".meta").first).to_contain_text("beauty")  # the references run's domain
            path = shot(page, tmp_path, "byo_walkthrough")
        finally:
            browser.close()
    assert CHROMIUM.exists() and path.stat().st_size > 20_000
