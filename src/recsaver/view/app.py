"""The viewer web app: server-rendered FastAPI + Jinja pages and two JSON endpoints over run folders.

Why this shape:
- The list is paged on the server (`/api/examples` answers one page, filtered and sorted there), so
  a run of 10,000 examples never travels to the browser whole; the page's script only swaps rows.
- One example is a plain server-rendered page (`/example/ID`), one column per run, so comparing
  runs is the same page with more columns and every view has a URL to share or reload.
- Model text is untrusted: templates autoescape, the script writes with `textContent`, and the
  Content-Security-Policy allows no inline script. Inline styles are allowed, for the bar widths.
- Read only: nothing here writes to a run folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ..web import add_security_headers
from .data import Viewer
from .detail import example_detail
from .query import FIXED_SORTS, MAX_PAGE_SIZE, select
from .query import Query as ListQuery

HERE = Path(__file__).parent
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _runs_json(viewer: Viewer) -> list[dict[str, Any]]:
    return [{"run": v.index, "label": v.label, "title": v.title, "kind": v.kind, "domain": v.domain,
             "folder": str(v.folder), "examples": len(v.records), "scores": v.score_sources} for v in viewer.runs]


def create_app(runs: Sequence[Path] | Viewer) -> FastAPI:
    """The app over run folders (or an already loaded `Viewer`); every folder is read once, here."""
    viewer = runs if isinstance(runs, Viewer) else Viewer([Path(r) for r in runs])
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["num"] = _num
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.state.viewer = viewer

    add_security_headers(app, _HEADERS)

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return page(request, "message.html", exc.status_code, title=f"Error {exc.status_code}", message=exc.detail)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        return page(request, "list.html", runs=viewer.runs, domains=viewer.domains, statuses=viewer.statuses,
                    metrics=viewer.metric_names, sorts=FIXED_SORTS, total=len(viewer.rows), max_size=MAX_PAGE_SIZE)

    @app.get("/api/runs")
    def api_runs() -> dict[str, Any]:
        return {"runs": _runs_json(viewer), "metrics": viewer.metric_names, "domains": viewer.domains,
                "statuses": viewer.statuses, "rows": len(viewer.rows)}

    @app.get("/api/examples")
    def api_examples(run: str = "", domain: str = "", gold: str = "", pred: str = "", correct: str = "",
                     status: str = "", metric: str = "", lo: str = Query("", alias="min"),
                     hi: str = Query("", alias="max"),
                     sort: str = "example_id", order: str = "asc", page: int = 1, size: int = 50) -> dict[str, Any]:
        try:
            query = ListQuery(run=_int(run, "run"), domain=domain, gold=_int(gold, "gold"), pred=pred,
                              correct=correct, status=status, metric=metric, min=_float(lo, "min"),
                              max=_float(hi, "max"), sort=sort, order=order, page=page, size=size)
            total, rows = select(viewer.rows, query, viewer.metric_names)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        labels = {v.index: v.label for v in viewer.runs}
        return {"total": total, "page": query.page, "size": query.size, "pages": max(1, -(-total // query.size)),
                "rows": [r.to_dict(labels[r.run]) for r in rows]}

    def detail(example_id: str, runs: list[int] | None) -> dict[str, Any]:
        try:
            return example_detail(viewer, example_id, runs)
        except KeyError:
            raise HTTPException(404, f"No run here has the example {example_id}.") from None

    @app.get("/api/example/{example_id:path}")
    def api_example(example_id: str, runs: list[int] | None = Query(None)) -> dict[str, Any]:
        return detail(example_id, runs)

    @app.get("/example/{example_id:path}", response_class=HTMLResponse)
    def example_page(request: Request, example_id: str, runs: list[int] | None = Query(None)) -> HTMLResponse:
        return page(request, "example.html", ex=detail(example_id, runs), metrics=viewer.metric_names)

    return app


def _int(value: str, name: str) -> int | None:
    if not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}: a whole number, not {value!r}") from None


def _float(value: str, name: str) -> float | None:
    if not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name}: a number, not {value!r}") from None


def _num(value: Any, digits: int = 3) -> str:
    """A number for display; None and NaN show as a dash."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (for `--port 0`, so the address can be printed before serving)."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 0, open_browser: bool = True,
          say: Callable[[str], Any] = print) -> None:
    """Serve until Ctrl+C; print the address and (unless told not to) open it in the default browser."""
    import threading
    import webbrowser

    import uvicorn

    port = port or free_port(host)
    url = f"http://{host}:{port}/"
    say(f"recsaver view on {url} (Ctrl+C stops)")
    if open_browser:
        threading.Timer(1.0, webbrowser.open, [url]).start()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
