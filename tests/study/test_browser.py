"""End to end in a real headless Chromium (Debian /usr/bin/chromium driven by playwright-python).

A rater opens the personal link, answers (autosave), reloads and resumes, revises; a second
rater sees none of it; the admin sees the progress and exports the CSV. Screenshots of the
task list, task page and admin page go to tmp_path (and to $RECSAVER_SCREENSHOTS when set).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from .conftest import serve
from .test_create import cli

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
NOTE = "Says the user bought 7 serums; the history shows 6."


@pytest.fixture
def real_study(real_run: Path, tmp_path: Path) -> tuple[Path, str]:
    made = CliRunner().invoke(cli(), ["study", "create", "--predictions", str(real_run), "--out",
                                      str(tmp_path / "study"), "--base-url", "http://x"])
    assert made.exit_code == 0, made.output
    return tmp_path / "study", re.search(r"http://x(/admin/login/\S+)", made.output).group(1)


@pytest.fixture
def server(real_study: tuple[Path, str]) -> Iterator[str]:
    yield from serve(real_study[0])


def add_rater(study: Path, name: str, base: str) -> str:
    added = CliRunner().invoke(cli(), ["study", "raters", "add", str(study), name, "--base-url", base])
    assert added.exit_code == 0, added.output
    return re.search(rf"({re.escape(base)}/login/\S+)", added.output).group(1)


def shot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("RECSAVER_SCREENSHOTS"):
        target = Path(os.environ["RECSAVER_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)


def test_rater_answers_reloads_resumes_and_stays_private(real_study: tuple[Path, str], server: str,
                                                         tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install_chromium.sh (make install does)")
    study, admin_path = real_study
    ann_link, bob_link = add_rater(study, "ann", server), add_rater(study, "bob", server)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            ann = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            ann.goto(ann_link)
            assert ann.url == f"{server}/"  # the token left the address bar
            expect(ann.locator("#progress-text")).to_contain_text("0 of 2 tasks complete")
            ann.click("#continue")
            expect(ann.locator("h1")).to_have_text("Task 1 of 2")
            assert "### Rating" not in ann.content()
            # Answer by clicking; every change is saved at once (no submit button pressed).
            ann.check("input[name=coherence][value='4']")
            ann.check("input[name=faithfulness][value=no]")
            ann.check("input[name=errors][value=stats]")
            ann.check("input[name=insightfulness][value='2']")
            ann.fill("textarea[name=note]", NOTE)
            expect(ann.locator("#save-status")).to_have_text("Saved (complete)", timeout=10_000)
            expect(ann.locator("#progress-count")).to_have_text("1 / 2 complete")
            shot(ann, tmp_path, "task_page")
            ann.reload()
            assert ann.is_checked("input[name=coherence][value='4']")
            assert ann.is_checked("input[name=errors][value=stats]")
            assert ann.input_value("textarea[name=note]") == NOTE
            # Choosing "faithful" clears and disables the error types, so the answer stays consistent.
            ann.check("input[name=faithfulness][value=yes]")
            assert ann.is_disabled("input[name=errors][value=stats]")
            assert not ann.is_checked("input[name=errors][value=stats]")
            expect(ann.locator("#save-status")).to_have_text("Saved (complete)", timeout=10_000)
            ann.check("input[name=faithfulness][value=no]")
            ann.check("input[name=errors][value=stats]")
            expect(ann.locator("#save-status")).to_have_text("Saved (complete)", timeout=10_000)
            # Move on, answer half of task 2, leave.
            ann.click("#save-next")
            expect(ann.locator("h1")).to_have_text("Task 2 of 2")
            ann.check("input[name=coherence][value='3']")
            expect(ann.locator("#save-status")).to_have_text("Saved (incomplete)", timeout=10_000)
            ann.context.close()

            # A fresh browser session with the same link resumes at the unfinished task.
            again = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            again.goto(ann_link)
            expect(again.locator("#progress-text")).to_contain_text("1 of 2 tasks complete")
            expect(again.locator("#continue")).to_have_text("Continue with task 2")
            shot(again, tmp_path, "task_list")
            again.click("#continue")
            assert again.is_checked("input[name=coherence][value='3']")
            again.goto(f"{server}/item/1")
            # revise; the status already reads "Saved (complete)", so wait for the autosave's own response
            with again.expect_response(lambda r: r.request.method == "POST", timeout=10_000):
                again.check("input[name=coherence][value='5']")
            expect(again.locator("#save-status")).to_have_text("Saved (complete)", timeout=10_000)
            again.reload()
            assert again.is_checked("input[name=coherence][value='5']")
            again.context.close()

            # The second rater sees the same tasks, none of the first rater's answers.
            bob = browser.new_context().new_page()
            bob.goto(bob_link)
            expect(bob.locator("#progress-text")).to_contain_text("0 of 2 tasks complete")
            for pos in (1, 2):
                bob.goto(f"{server}/item/{pos}")
                assert bob.locator("input:checked").count() == 0
                assert bob.input_value("textarea[name=note]") == ""
                assert NOTE not in bob.content()
            assert bob.goto(f"{server}/admin").status == 401
            bob.context.close()

            admin = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True).new_page()
            admin.goto(server + admin_path)
            expect(admin.locator("#progress-table")).to_contain_text("ann")
            rows = admin.locator("#progress-table tbody tr")
            expect(rows.nth(0)).to_contain_text("ann")
            assert [c.strip() for c in rows.nth(0).locator("td").all_inner_texts()[2:4]] == ["2", "1"]
            shot(admin, tmp_path, "admin_page")
            with admin.expect_download() as download:
                admin.click("#export")
            csv_text = Path(download.value.path()).read_text()
            assert NOTE in csv_text and csv_text.count("\n") == 3  # header + ann's two answers
        finally:
            browser.close()
