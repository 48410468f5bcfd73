"""The viewer in a real headless Chromium (Debian /usr/bin/chromium driven by playwright-python): open the
list, filter by gold rating, open one example (reasoning, P(1..5) bars, collapsed prompt, candidates with
struck-through sentences), compare two runs side by side, and page a 10,000-row run. Screenshots go to
tmp_path (and to $RECSAVER_SCREENSHOTS when set)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import N_BIG, read_jsonl, serve

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def server(view_runs: dict[str, Path]) -> Iterator[str]:
    yield from serve([view_runs["A"], view_runs["B"], view_runs["R"]])


@pytest.fixture
def big_server(big_run: Path) -> Iterator[str]:
    yield from serve([big_run])


def shot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("RECSAVER_SCREENSHOTS"):
        target = Path(os.environ["RECSAVER_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)
    return path


def browser_or_skip() -> Any:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run scripts/install_chromium.sh (make install does)")
    from playwright.sync_api import sync_playwright

    return sync_playwright()


def test_list_filter_example_and_side_by_side(view_runs: dict[str, Path], server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    a = {p["example_id"]: p for p in read_jsonl(view_runs["A"] / "predictions.jsonl")}
    refs = {r["example_id"]: r for r in read_jsonl(view_runs["R"] / "references.jsonl")}
    # The example to open: the one whose candidates lost the most sentences to the scrubber.
    eid = max(refs, key=lambda e: sum(len(c["removed_sentences"]) for c in refs[e]["candidates"]))
    gold = a[eid]["rating_true"]
    same_gold = sum(1 for p in a.values() if p["rating_true"] == gold)
    with browser_or_skip() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(server)
            rows = page.locator("#rows tbody tr")
            expect(rows).to_have_count(9)  # 3 examples x (cot, direct, references)
            expect(page.locator("#page-info")).to_have_text("page 1 of 1 · 9 rows")
            shot(page, tmp_path, "list")

            page.select_option("select[name=gold]", str(gold))
            expect(rows).to_have_count(3 * same_gold)
            assert set(page.locator("#rows tbody td.gold").all_inner_texts()) == {str(gold)}
            assert f"gold={gold}" in page.url  # the filter is in the address, so a reload keeps it
            page.select_option("select[name=run]", "0")
            expect(rows).to_have_count(same_gold)

            page.locator(f"#rows tbody tr[data-example-id='{eid}'] a.example-link").click()
            expect(page.locator("#example-id")).to_have_text(eid)
            panels = page.locator(".run-panel")
            expect(panels).to_have_count(3)
            cot = panels.nth(0)
            expect(cot.locator(".reasoning")).to_contain_text(a[eid]["reasoning"].splitlines()[0])
            bars = cot.locator(".bars .bar-row")
            expect(bars).to_have_count(5)
            widths = [b.bounding_box()["width"] for b in cot.locator(".bars .bar").all()]
            probs = a[eid]["probs"]
            top = max(range(5), key=lambda k: probs[k])
            for k in range(5):  # each bar is as long as its probability, relative to the largest
                assert abs(widths[k] - widths[top] * probs[k] / probs[top]) < 3, (widths, probs)
            expect(cot.locator(".bar-row.is-gold .bar-label")).to_have_text(str(gold))
            prompt = cot.locator("details.prompt")
            assert prompt.get_attribute("open") is None  # collapsed by default
            expect(prompt.locator("pre")).to_be_hidden()
            prompt.locator("summary").click()
            expect(prompt.locator("pre")).to_be_visible()
            expect(prompt.locator("pre")).to_contain_text("### Reason ###")
            refs_panel = panels.nth(2)
            expect(refs_panel.locator(".candidate")).to_have_count(len(refs[eid]["candidates"]))
            removed = [s for c in refs[eid]["candidates"] for s in c["removed_sentences"]]
            struck = refs_panel.locator(".cand-text del")
            expect(struck).to_have_count(len(removed))
            if removed:
                expect(struck.first).to_be_visible()
                assert struck.first.evaluate("e => getComputedStyle(e).textDecorationLine") == "line-through"
                assert struck.first.inner_text() == removed[0].strip()
            shot(page, tmp_path, "example")

            # Compare the two predict runs only: two columns, side by side.
            page.uncheck("#compare input[name=runs][value='2']")
            page.click("#compare button[type=submit]")
            expect(panels).to_have_count(2)
            left, right = (panels.nth(k).bounding_box() for k in (0, 1))
            assert left and right and abs(left["y"] - right["y"]) < 2 and right["x"] >= left["x"] + left["width"]
            expect(panels.nth(1).locator("h2")).to_contain_text("1:")
            b = {p["example_id"]: p for p in read_jsonl(view_runs["B"] / "predictions.jsonl")}
            expect(panels.nth(1).locator(".pred")).to_have_text(str(b[eid]["rating_pred"]))
            shot(page, tmp_path, "side_by_side")
            assert "gold=" in (page.get_attribute("#back", "href") or "")  # back to the filtered list
        finally:
            browser.close()
    assert (tmp_path / "side_by_side.png").stat().st_size > 20_000


def test_ten_thousand_rows_page_in_the_browser(view_runs: dict[str, Path], big_server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    best = max(s["bleu"] for s in read_jsonl(view_runs["A"] / "text_scores.jsonl"))
    with browser_or_skip() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(big_server)
            info = page.locator("#page-info")
            expect(info).to_have_text(f"page 1 of {N_BIG // 50} · {N_BIG} rows")
            rows = page.locator("#rows tbody tr")
            expect(rows).to_have_count(50)  # one page in the DOM, not the run
            expect(rows.first).to_have_attribute("data-example-id", "big00000")
            page.click("#next")
            expect(info).to_have_text(f"page 2 of {N_BIG // 50} · {N_BIG} rows")
            expect(rows.first).to_have_attribute("data-example-id", "big00050")
            page.select_option("select[name=sort]", "bleu")
            page.select_option("select[name=order]", "desc")
            bleu = page.locator("#rows tbody td[data-metric=bleu]")
            # Sorting goes back to page 1: wait for that render, since page 2's own first row (big00050) may
            # already show the best BLEU (the big run repeats three examples' scores).
            expect(info).to_have_text(f"page 1 of {N_BIG // 50} · {N_BIG} rows")
            expect(bleu.first).to_have_text(f"{best:.3f}")
            expect(bleu.nth(49)).not_to_have_text("–")
            values = [float(v) for v in bleu.all_inner_texts()]
            assert len(values) == 50 and values == sorted(values, reverse=True)
            page.locator("#rows tbody a.example-link").first.click()
            expect(page.locator(".prompt-note")).to_have_count(1)
            expect(page.locator(".prompt-note")).to_contain_text("not in")
            shot(page, tmp_path, "big_example")
        finally:
            browser.close()
