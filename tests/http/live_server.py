"""A real uvicorn server on loopback, serving :func:`core.http.app.create_app` for a runtime.

``with live_server(runtime) as base:`` yields ``http://127.0.0.1:<port>``; the server runs in a
thread of the test process (one uvicorn worker), so the test can look at the database it writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from core.http.app import create_app
from core.runtime import Runtime, set_runtime
from core.settings import Settings


def http_runtime(db_url: str, program_dir: Path, folder: Path, **settings: object) -> Runtime:
    """The runtime a served engine has: this database, the program, an outbox in ``folder``
    (``settings`` override these and set others, e.g. ``redis_url``)."""
    values: dict[str, object] = {
        "database_url": db_url,
        "redis_url": None,
        "program_dir": program_dir,
        "outbox": folder / "outbox.jsonl",
    }
    runtime = Runtime(
        settings=Settings(_env_file=None, **(values | settings))  # type: ignore[call-arg,arg-type]
    )
    set_runtime(runtime)
    return runtime


@contextmanager
def live_server(runtime: Runtime, app: FastAPI | None = None) -> Iterator[str]:
    """Serve the app over ``runtime`` (or ``app``, built on it with routes a test adds) on a
    free loopback port until the block ends."""
    config = uvicorn.Config(
        app or create_app(runtime), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start on 127.0.0.1")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
