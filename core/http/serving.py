"""Running the app on uvicorn: one process, or ``--workers N`` processes that each build the
app from the settings (uvicorn imports :func:`app_from_settings` as a factory in each)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from core.http.app import create_app
from core.runtime import Runtime, get_runtime

FACTORY = "core.http.serving:app_from_settings"


def app_from_settings() -> FastAPI:
    """The app of one worker process: the runtime from ``LOYALTY_*`` settings."""
    return create_app(get_runtime())


def serve(runtime: Runtime, *, host: str, port: int, workers: int) -> None:
    """Serve until stopped. Several workers read the settings themselves; the program
    directory the command was given reaches them through ``LOYALTY_PROGRAM_DIR``."""
    import uvicorn

    if workers == 1:
        uvicorn.run(create_app(runtime), host=host, port=port, log_level="info")
        return
    os.environ["LOYALTY_PROGRAM_DIR"] = str(runtime.program_path)
    uvicorn.run(FACTORY, factory=True, host=host, port=port, workers=workers, log_level="info")
