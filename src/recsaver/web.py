"""What recsaver's two local web apps (the rater app, study/app.py, and the viewer, view/app.py) share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response


def add_security_headers(app: FastAPI, headers: Mapping[str, str]) -> None:
    """Every response gets `headers` (CSP, frame and content-type options), unless it set its own."""

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        for k, v in headers.items():
            response.headers.setdefault(k, v)
        return response
