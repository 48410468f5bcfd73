"""Every access rule of the rater app, at the HTTP level (FastAPI TestClient), plus concurrent saves."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from recsaver.study.app import ADMIN_COOKIE, RATER_COOKIE, create_app
from recsaver.study.db import StudyDB

from .conftest import LEAK

ANSWER = {"coherence": "4", "faithfulness": "no", "insightfulness": "2", "errors": ["stats", "arith"],
          "note": "Mentions 7 products; the history has 6."}


def client(folder: Path) -> TestClient:
    return TestClient(create_app(folder), base_url="http://127.0.0.1", follow_redirects=False)


def login(folder: Path, name: str) -> tuple[TestClient, str]:
    with StudyDB(folder) as db:
        _, token, _ = db.add_rater(name)
    c = client(folder)
    r = c.get(f"/login/{token}")
    assert r.status_code == 303 and r.headers["location"] == "/"
    return c, token


def csrf_of(c: TestClient, url: str = "/item/1") -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', c.get(url).text).group(1)


def test_nothing_is_reachable_without_a_valid_token(study: tuple[Path, str]) -> None:
    folder, _ = study
    c = client(folder)
    for url in ("/", "/item/1", "/admin", "/admin/export.csv"):
        assert c.get(url).status_code == 401, url
    assert c.post("/item/1", data={"coherence": "3"}).status_code == 401
    assert c.post("/admin/raters", data={"name": "x"}).status_code == 401
    bad = c.get("/login/not-a-token")
    assert bad.status_code == 403 and RATER_COOKIE not in bad.headers.get("set-cookie", "")
    c.cookies.set(RATER_COOKIE, "forged")
    assert c.get("/").status_code == 401
    assert c.get("/admin/login/not-the-admin-token").status_code == 403


def test_login_sets_a_protected_cookie_and_drops_the_token_from_the_url(study: tuple[Path, str]) -> None:
    folder, _ = study
    with StudyDB(folder) as db:
        _, token, assigned = db.add_rater("ann")
    assert assigned == 10
    r = client(folder).get(f"/login/{token}")
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and token not in r.headers["location"]
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "no-referrer"


def test_pages_show_history_item_reasoning_and_definitions_but_no_rating(study: tuple[Path, str]) -> None:
    folder, _ = study
    c, _ = login(folder, "ann")
    with StudyDB(folder) as db:
        (_, item, _) = db.assigned(1)[0]
    page = c.get("/item/1").text
    assert "makes sense and follows a clear and coherent logical flow" in page  # paper's definition
    assert "Incorrect product statistics" in page and "Arithmetic error" in page
    assert item.reasoning.splitlines()[0] in page and LEAK not in page and "### Rating" not in page
    title = re.search(r"Product Title: (.+)", item.new_item).group(1)
    assert title.replace("&", "&amp;").replace("'", "&#39;").replace('"', "&#34;") in page
    assert "User Rating:" in page  # history ratings are shown; target and prediction are not stored in pages
    assert "rating_true" not in page and "rating_pred" not in page


def test_saving_needs_the_csrf_token_of_this_rater(study: tuple[Path, str]) -> None:
    folder, _ = study
    ann, _ = login(folder, "ann")
    bob, _ = login(folder, "bob")
    assert ann.post("/item/1", data=ANSWER).status_code == 403
    assert ann.post("/item/1", data={**ANSWER, "csrf": csrf_of(bob)}).status_code == 403
    assert ann.post("/item/1", data={**ANSWER, "csrf": "0" * 64}).status_code == 403
    ok = ann.post("/item/1", data={**ANSWER, "csrf": csrf_of(ann), "go": "next"})
    assert ok.status_code == 303 and ok.headers["location"] == "/item/2"
    assert "1 of 10" in re.sub(r"<[^>]+>", "", ann.get("/").text)


def test_a_rater_can_neither_read_nor_change_another_raters_answers(study: tuple[Path, str]) -> None:
    folder, _ = study
    ann, _ = login(folder, "ann")
    bob, _ = login(folder, "bob")
    ann.post("/item/1", data={**ANSWER, "csrf": csrf_of(ann)})
    with StudyDB(folder) as db:
        ann_item = db.assigned(1)[0][1].item_id
        bob_pos = next(pos for pos, it, _ in db.assigned(2) if it.item_id == ann_item)
    bob_page = bob.get(f"/item/{bob_pos}").text
    assert ANSWER["note"] not in bob_page and "checked" not in bob_page
    bob.post(f"/item/{bob_pos}", data={"coherence": "1", "faithfulness": "yes", "insightfulness": "1",
                                       "csrf": csrf_of(bob, f"/item/{bob_pos}")})
    with StudyDB(folder) as db:
        rows = {r["rater"]: r for r in db.answer_rows() if r["item_id"] == ann_item}
    assert rows["ann"]["coherence"] == 4 and rows["ann"]["note"] == ANSWER["note"]
    assert rows["bob"]["coherence"] == 1
    assert bob.get("/item/11").status_code == 404 and bob.get("/item/0").status_code == 404
    assert bob.post("/item/11", data={**ANSWER, "csrf": csrf_of(bob)}).status_code == 404
    assert bob.get("/admin").status_code == 401 and bob.get("/admin/export.csv").status_code == 401


@pytest.mark.parametrize("field, value, message", [
    ("coherence", "7", "1 to 5"), ("coherence", "3.5", "1 to 5"), ("insightfulness", "0", "1 to 5"),
    ("faithfulness", "maybe", "yes or no"), ("errors", ["stats", "lies"], "unknown error type"),
    ("note", "x" * 2001, "at most 2000"),
])
def test_inputs_are_validated_on_the_server(study: tuple[Path, str], field: str, value: object,
                                            message: str) -> None:
    folder, _ = study
    ann, _ = login(folder, "ann")
    r = ann.post("/item/1", data={**ANSWER, field: value, "csrf": csrf_of(ann)})
    assert r.status_code == 422 and message in r.text
    auto = ann.post("/item/1", data={**ANSWER, field: value, "csrf": csrf_of(ann)}, headers={"X-Autosave": "1"})
    assert auto.status_code == 422 and message in str(auto.json()["errors"])
    with StudyDB(folder) as db:
        assert db.answer_rows() == []


def test_faithful_answers_cannot_list_errors_and_partial_answers_are_kept(study: tuple[Path, str]) -> None:
    folder, _ = study
    ann, _ = login(folder, "ann")
    token = csrf_of(ann)
    r = ann.post("/item/1", data={**ANSWER, "faithfulness": "yes", "csrf": token}, headers={"X-Autosave": "1"})
    assert r.status_code == 422 and "faithful cannot list" in r.json()["errors"]["errors"]
    partial = ann.post("/item/1", data={"coherence": "3", "csrf": token}, headers={"X-Autosave": "1"})
    assert partial.json() == {"ok": True, "complete": False, "done": 0, "total": 10}
    unfaithful_no_type = ann.post("/item/1", data={**ANSWER, "errors": [], "csrf": token},
                                  headers={"X-Autosave": "1"})
    assert unfaithful_no_type.json()["complete"] is False
    done = ann.post("/item/1", data={**ANSWER, "csrf": token}, headers={"X-Autosave": "1"})
    assert done.json() == {"ok": True, "complete": True, "done": 1, "total": 10}
    revised = ann.post("/item/1", data={**ANSWER, "coherence": "5", "csrf": token}, headers={"X-Autosave": "1"})
    assert revised.json()["complete"] is True
    assert 'value="5" checked' in ann.get("/item/1").text


def test_admin_sees_progress_exports_csv_and_adds_raters_with_csrf(study: tuple[Path, str]) -> None:
    folder, admin_token = study
    ann, _ = login(folder, "ann")
    ann.post("/item/1", data={**ANSWER, "note": "=HYPERLINK(\"x\")", "csrf": csrf_of(ann)})
    adm = client(folder)
    assert ann.get(f"/admin/login/{admin_token}").status_code == 303  # the admin link itself works anywhere
    r = adm.get(f"/admin/login/{admin_token}")
    assert r.status_code == 303 and ADMIN_COOKIE in r.headers["set-cookie"]
    page = adm.get("/admin").text
    assert "ann" in page and re.search(r"<td>10</td><td>1</td>", page)
    csv_text = adm.get("/admin/export.csv").text
    assert csv_text.splitlines()[0].startswith("item_id,example_id,domain,model,rater,coherence")
    assert "'=HYPERLINK" in csv_text  # a formula in free text is neutralised for spreadsheets
    assert adm.post("/admin/raters", data={"name": "cy"}).status_code == 403
    added = adm.post("/admin/raters", data={"name": "cy", "csrf": csrf_of(adm, "/admin")})
    link = re.search(r"<code>(http://127\.0\.0\.1/login/[^<]+)</code>", added.text).group(1)
    assert client(folder).get(link.replace("http://127.0.0.1", "")).status_code == 303
    assert adm.post("/admin/raters", data={"name": "cy", "csrf": csrf_of(adm, "/admin")}).status_code == 422
    # A rater's session never grants admin rights, and the admin cookie is not a rater session.
    assert adm.get("/").status_code == 401


def test_logout_needs_csrf_and_ends_the_session(study: tuple[Path, str]) -> None:
    folder, _ = study
    ann, _ = login(folder, "ann")
    assert ann.post("/logout").status_code == 403
    out = ann.post("/logout", data={"csrf": csrf_of(ann)})
    assert out.status_code == 303 and RATER_COOKIE in out.headers["set-cookie"]
    assert ann.get("/").status_code == 401


def test_concurrent_raters_never_lose_a_write(study: tuple[Path, str], live_server: str) -> None:
    """Six raters save all their items at once through the real server; every answer lands."""
    folder, _ = study
    with StudyDB(folder) as db:
        db.conn.execute("UPDATE meta SET value = ? WHERE key = 'config'", ('{"raters": 6}',))
    tokens = []
    with StudyDB(folder) as db:
        for k in range(6):
            tokens.append(db.add_rater(f"r{k}")[1])
    failures: list[str] = []

    def rater(k: int) -> None:
        with httpx.Client(base_url=live_server, follow_redirects=False, timeout=60) as h:
            h.get(f"/login/{tokens[k]}")
            for pos in range(1, 11):
                page = h.get(f"/item/{pos}").text
                csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
                r = h.post(f"/item/{pos}", data={"coherence": str(1 + (k + pos) % 5), "faithfulness": "yes",
                                                  "insightfulness": str(1 + k % 5), "csrf": csrf,
                                                  "note": f"r{k}-{pos}"}, headers={"X-Autosave": "1"})
                if r.status_code != 200:
                    failures.append(f"r{k} item {pos}: {r.status_code} {r.text}")

    threads = [threading.Thread(target=rater, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with StudyDB(folder) as db:
        rows = db.answer_rows(complete_only=True)
        positions = {(r.rater_id, item.item_id): pos for r in db.raters() for pos, item, _ in db.assigned(r.rater_id)}
        names = {r.name: r.rater_id for r in db.raters()}
    assert len(rows) == 60
    for row in rows:
        pos = positions[(names[row["rater"]], row["item_id"])]
        assert row["note"] == f"{row['rater']}-{pos}"
