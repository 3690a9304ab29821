"""Running the app on uvicorn: one process, or ``--workers N`` processes that each build the
app from the settings (uvicorn imports :func:`app_from_settings` as a factory in each).

With several workers, each keeps its Prometheus counters in a fresh directory named by
``PROMETHEUS_MULTIPROC_DIR`` (made before uvicorn starts them, removed when it stops), so
``/metrics`` in any of them sums them all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from fastapi import FastAPI

from core.http.app import create_app
from core.http.metrics import MULTIPROC_ENV
from core.program.loader import ProgramError
from core.runtime import Runtime, get_runtime

FACTORY = "core.http.serving:app_from_settings"


def app_from_settings() -> FastAPI:
    """The app of one worker process: the runtime from ``LOYALTY_*`` settings, its program
    loaded before the first request (else every request of the first burst loads it again, in
    its own thread, until one has finished). A broken program is left to the endpoints, which
    answer 503 naming the error."""
    runtime = get_runtime()
    with suppress(ProgramError):
        runtime.program_or_none()
    return create_app(runtime)


def serve(runtime: Runtime, *, host: str, port: int, workers: int) -> None:
    """Serve until stopped. Several workers read the settings themselves; the program
    directory the command was given reaches them through ``LOYALTY_PROGRAM_DIR``."""
    import uvicorn

    logged = runtime.settings.api_access_log
    if workers == 1:
        uvicorn.run(create_app(runtime), host=host, port=port, log_level="info", access_log=logged)
        return
    os.environ["LOYALTY_PROGRAM_DIR"] = str(runtime.program_path)
    with shared_metrics_directory():
        uvicorn.run(
            FACTORY, factory=True, host=host, port=port, workers=workers, log_level="info",
            access_log=logged,
        )  # fmt: skip


@contextmanager
def shared_metrics_directory() -> Iterator[str]:
    """A fresh directory in ``PROMETHEUS_MULTIPROC_DIR`` for the worker processes started in
    the block (counters of an earlier run never count again); removed afterwards."""
    directory = tempfile.mkdtemp(prefix="loyalty-metrics-")
    before = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        if before is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = before
        shutil.rmtree(directory, ignore_errors=True)
