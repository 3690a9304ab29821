"""What endpoints depend on: the runtime the app was built with."""

from __future__ import annotations

from fastapi import Request

from core.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    """The runtime :func:`core.http.app.create_app` was given."""
    runtime: Runtime = request.app.state.runtime
    return runtime
