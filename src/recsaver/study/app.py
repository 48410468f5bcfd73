"""The rater web app: server-rendered FastAPI + Jinja2 pages over the study database.

Access rules (each one has an HTTP-level test in tests/study/test_app_access.py):
- A personal link `/login/<token>` exchanges the token for an HttpOnly, SameSite=Lax cookie
  and redirects, so the token leaves the address bar; uvicorn's access log is off (it would
  record the token). Without a valid cookie every page answers 401.
- Tokens are checked against stored SHA-256 hashes with `hmac.compare_digest`.
- Every query a rater can trigger is scoped by the rater id taken from the cookie, and items
  are addressed by the position in the rater's OWN assignment list, so there is no URL that
  names another rater's answer; an unassigned position is 404.
- Every POST carries a CSRF token (HMAC of the session token under a per-study secret) in a
  hidden field, checked in constant time; SameSite cookies add a second barrier.
- Inputs are validated on the server (`answers.parse_answer_fields`), whatever the browser sent.
- Every save is one SQLite transaction (WAL, busy timeout): concurrent raters never lose a write.
- Security headers: a strict Content-Security-Policy (no inline script), no framing, no referrer.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ..web import add_security_headers
from .answers import DEFINITIONS, ERROR_TYPES, AnswerError, parse_answer_fields
from .db import Rater, StudyDB

HERE = Path(__file__).parent
RATER_COOKIE = "recsaver_rater"
ADMIN_COOKIE = "recsaver_admin"
EXPORT_COLUMNS = ("item_id", "example_id", "domain", "model", "rater", "coherence", "faithfulness",
                  "insightfulness", "error_types", "note", "complete", "source", "updated_at")
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def csrf_token(secret: bytes, purpose: str, session_token: str) -> str:
    return hmac.new(secret, f"{purpose}:{session_token}".encode(), hashlib.sha256).hexdigest()


def spreadsheet_safe(value: str) -> str:
    """Free text that a spreadsheet would run as a formula gets a leading quote (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def create_app(study: Path, *, secure_cookies: bool = False) -> FastAPI:
    """The app for one study folder. `secure_cookies` for deployments behind HTTPS."""
    study = Path(study)
    StudyDB(study).close()  # fail at start, with the path, when there is no study
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    add_security_headers(app, _HEADERS)

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.headers.get("x-autosave"):
            return JSONResponse({"ok": False, "errors": {"_": exc.detail}}, status_code=exc.status_code)
        return page(request, "message.html", exc.status_code, title=f"Error {exc.status_code}", message=exc.detail)

    def open_db() -> Iterator[StudyDB]:
        db = StudyDB(study)
        try:
            yield db
        finally:
            db.close()

    def current_rater(request: Request, db: StudyDB = Depends(open_db)) -> tuple[Rater, str]:
        token = request.cookies.get(RATER_COOKIE, "")
        rater = db.rater_by_token(token)
        if rater is None:
            raise HTTPException(401, "Please open your personal study link to sign in.")
        return rater, token

    def current_admin(request: Request, db: StudyDB = Depends(open_db)) -> str:
        token = request.cookies.get(ADMIN_COOKIE, "")
        if not db.check_admin(token):
            raise HTTPException(401, "Please open the admin link printed by `recsaver study create`.")
        return token

    def check_csrf(db: StudyDB, purpose: str, session_token: str, sent: str) -> None:
        if not hmac.compare_digest(csrf_token(db.csrf_secret(), purpose, session_token), sent or ""):
            raise HTTPException(403, "The form's security token is missing or wrong; reload the page and try again.")

    def set_cookie(response: Response, name: str, value: str) -> None:
        response.set_cookie(name, value, httponly=True, samesite="lax", secure=secure_cookies, path="/",
                            max_age=60 * 60 * 24 * 60)

    # ---- raters -----------------------------------------------------------------------------------

    @app.get("/login/{token}")
    def login(token: str, db: StudyDB = Depends(open_db)) -> Response:
        if db.rater_by_token(token) is None:
            raise HTTPException(403, "This study link is not valid. Ask the study admin for your personal link.")
        response = RedirectResponse("/", status_code=303)
        set_cookie(response, RATER_COOKIE, token)
        return response

    @app.post("/logout")
    def logout(csrf: str = Form(""), db: StudyDB = Depends(open_db),
               who: tuple[Rater, str] = Depends(current_rater)) -> Response:
        check_csrf(db, "rater", who[1], csrf)
        response = RedirectResponse("/signed-out", status_code=303)
        response.delete_cookie(RATER_COOKIE, path="/")
        return response

    @app.get("/signed-out", response_class=HTMLResponse)
    def signed_out(request: Request) -> HTMLResponse:
        return page(request, "message.html", title="Signed out",
                    message="Your answers are saved. Open your personal link again to continue.")

    @app.get("/", response_class=HTMLResponse)
    def tasks(request: Request, db: StudyDB = Depends(open_db),
              who: tuple[Rater, str] = Depends(current_rater)) -> HTMLResponse:
        rater, token = who
        rows = db.assigned(rater.rater_id)
        done = sum(1 for _, _, a in rows if a is not None and a.complete)
        next_pos = next((pos for pos, _, a in rows if a is None or not a.complete), None)
        return page(request, "tasks.html", rater=rater, rows=rows, done=done, total=len(rows), next_pos=next_pos,
                    csrf=csrf_token(db.csrf_secret(), "rater", token))

    def item_context(db: StudyDB, rater: Rater, token: str, position: int) -> dict[str, Any]:
        rows = db.assigned(rater.rater_id)
        found = next(((item, answer) for pos, item, answer in rows if pos == position), None)
        if found is None:
            raise HTTPException(404, "There is no such task in your list.")
        item, answer = found
        positions = [pos for pos, _, _ in rows]
        k = positions.index(position)
        return {"rater": rater, "item": item, "answer": answer, "position": position, "total": len(rows),
                "done": sum(1 for _, _, a in rows if a is not None and a.complete),
                "prev_pos": positions[k - 1] if k > 0 else None,
                "next_pos": positions[k + 1] if k + 1 < len(positions) else None,
                "history_blocks": [b for b in item.history.split("\n\n") if b.strip()],
                "definitions": DEFINITIONS, "error_types": ERROR_TYPES,
                "csrf": csrf_token(db.csrf_secret(), "rater", token)}

    @app.get("/item/{position}", response_class=HTMLResponse)
    def item_page(request: Request, position: int, saved: int = 0, db: StudyDB = Depends(open_db),
                  who: tuple[Rater, str] = Depends(current_rater)) -> HTMLResponse:
        ctx = item_context(db, who[0], who[1], position)
        return page(request, "item.html", saved=bool(saved), errors={}, **ctx)

    @app.post("/item/{position}")
    def save_item(request: Request, position: int, coherence: str = Form(""), faithfulness: str = Form(""),
                  insightfulness: str = Form(""), errors: list[str] = Form([]), note: str = Form(""),
                  csrf: str = Form(""), go: str = Form("save"), db: StudyDB = Depends(open_db),
                  who: tuple[Rater, str] = Depends(current_rater)) -> Response:
        rater, token = who
        check_csrf(db, "rater", token, csrf)
        ctx = item_context(db, rater, token, position)
        autosave = bool(request.headers.get("x-autosave"))
        try:
            answer = parse_answer_fields({"coherence": coherence, "faithfulness": faithfulness,
                                          "insightfulness": insightfulness, "note": note}, errors)
        except AnswerError as e:
            if autosave:
                return JSONResponse({"ok": False, "errors": e.errors}, status_code=422)
            return page(request, "item.html", 422, saved=False, errors=e.errors,
                        **{**ctx, "answer": _submitted(coherence, faithfulness, insightfulness, errors, note)})
        db.save_answer(rater.rater_id, ctx["item"].item_id, answer)
        if autosave:
            rows = db.assigned(rater.rater_id)
            done = sum(1 for _, _, a in rows if a is not None and a.complete)
            return JSONResponse({"ok": True, "complete": answer.complete, "done": done, "total": len(rows)})
        target = {"next": ctx["next_pos"], "prev": ctx["prev_pos"]}.get(go, position)
        url = "/" if target is None else f"/item/{target}" + ("?saved=1" if target == position else "")
        return RedirectResponse(url, status_code=303)

    # ---- admin ------------------------------------------------------------------------------------

    @app.get("/admin/login/{token}")
    def admin_login(token: str, db: StudyDB = Depends(open_db)) -> Response:
        if not db.check_admin(token):
            raise HTTPException(403, "This admin link is not valid.")
        response = RedirectResponse("/admin", status_code=303)
        set_cookie(response, ADMIN_COOKIE, token)
        return response

    def admin_page(request: Request, db: StudyDB, token: str, **extra: Any) -> HTMLResponse:
        items = db.items()
        context = {"progress": db.progress(), "items": len(items), "per_item": db.config().get("raters", 3),
                   "answers": len(db.answer_rows(complete_only=True)),
                   "csrf": csrf_token(db.csrf_secret(), "admin", token), "new_link": None, "error": None, **extra}
        return page(request, "admin.html", **context)

    @app.get("/admin", response_class=HTMLResponse)
    def admin(request: Request, db: StudyDB = Depends(open_db), token: str = Depends(current_admin)) -> HTMLResponse:
        return admin_page(request, db, token)

    @app.post("/admin/raters", response_class=HTMLResponse)
    def admin_add_rater(request: Request, name: str = Form(""), csrf: str = Form(""),
                        db: StudyDB = Depends(open_db), token: str = Depends(current_admin)) -> HTMLResponse:
        check_csrf(db, "admin", token, csrf)
        try:
            rater, rater_token, _ = db.add_rater(name)
        except ValueError as e:
            return admin_page(request, db, token, status_code=422, error=str(e))
        link = str(request.base_url).rstrip("/") + f"/login/{rater_token}"
        return admin_page(request, db, token, new_link=(rater.name, link))

    @app.get("/admin/export.csv")
    def export_csv(db: StudyDB = Depends(open_db), token: str = Depends(current_admin)) -> Response:
        return Response(answers_csv(db), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="study_answers.csv"'})

    return app


def answers_csv(db: StudyDB) -> str:
    """Every answer, one row each; `recsaver study import` reads this layout back."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_COLUMNS)
    for r in db.answer_rows():
        faithful = "" if r["faithful"] is None else ("yes" if r["faithful"] else "no")
        errors = ";".join(k for k, _ in ERROR_TYPES if r[f"err_{k}"])
        writer.writerow([r["item_id"], r["example_id"], r["domain"], r["model"], spreadsheet_safe(r["rater"]),
                         r["coherence"] or "", faithful, r["insightfulness"] or "", errors,
                         spreadsheet_safe(r["note"]), r["complete"], r["source"], r["updated_at"]])
    return buf.getvalue()


def _submitted(coherence: str, faithfulness: str, insight: str, errors: list[str], note: str) -> Any:
    """What the rater sent, echoed back into the form after a validation error (never saved)."""
    from types import SimpleNamespace

    def num(v: str) -> Any:
        return int(v) if v.strip().isdigit() else None

    faithful = {"yes": True, "no": False}.get(faithfulness.strip().lower())
    return SimpleNamespace(coherence=num(coherence), faithful=faithful, insightfulness=num(insight),
                           errors=frozenset(errors), note=note, complete=False)
