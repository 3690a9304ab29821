"""What endpoints depend on: the runtime the app was built with."""

from __future__ import annotations

from fastapi import Request

from core.runtime import Runtime


async def runtime_of(request: Request) -> Runtime:
    """The runtime :func:`core.http.app.create_app` was given (async: FastAPI would run a plain
    function dependency in a worker thread, a thread hop per request for reading an attribute)."""
    runtime: Runtime = request.app.state.runtime
    return runtime
