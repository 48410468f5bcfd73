"""A real ASGI app (the rater app, the viewer) under uvicorn in a thread, for tests that need a live URL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from tests.backends.llama_server import free_port


def serve_app(app: Any, what: str) -> Iterator[str]:
    """Serve `app` on a free 127.0.0.1 port until the generator is closed; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the {what} did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
