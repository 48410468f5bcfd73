"""The report in a real headless Chromium: the tables render, the plots decode, a screenshot is taken."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsaver.reports.html import build_report
from tests.report.smoke import smoke_experiment

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")


def test_report_opens_in_chromium(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install_chromium.sh (or apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    report, _ = build_report([smoke_experiment(tmp_path_factory)["folder"]], tmp_path / "report.html", resamples=50)
    shot = tmp_path / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(report.resolve().as_uri())
            tables = page.locator("table.paper")
            assert tables.count() == 3  # Tables 3, 11 and 15
            first = tables.first
            assert first.is_visible()
            box = first.bounding_box()
            assert box is not None and box["width"] > 400 and box["height"] > 60
            headers = first.locator("thead th").all_inner_texts()
            assert headers[:3] == ["Domain", "Method", "Binary Acc."] and "Multi. MAE ↓" in headers
            rows = first.locator("tbody tr").all_inner_texts()
            assert any("Naive Baseline (Avg.)" in r for r in rows) and any("Our Method" in r for r in rows)
            # Every embedded plot decoded to a real bitmap.
            widths = page.eval_on_selector_all("img.plot", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert widths and all(w > 100 for w in widths)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000
