"""The FastAPI application: operations endpoints (``/livez``, ``/readyz``, ``/metrics``), ``/v1``
with every package's router, and problem+json errors. ``loyalty-engine serve`` runs it on
uvicorn."""

from __future__ import annotations

import gc
import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from core.http.problems import install_problem_handlers
from core.http.registry import api_routers
from core.readcache import ReadCache
from core.runtime import Runtime
from core.settings import Settings

API_VERSION = "1.0.0"


def create_app(runtime: Runtime) -> FastAPI:
    """The app over ``runtime`` (its settings, engine and program), every package wired."""
    from core.packages import load_packages

    load_packages()
    read_cache = build_read_cache(runtime.settings)
    app = FastAPI(
        title="loyalty-engine",
        version=API_VERSION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=_listening(read_cache),
    )
    app.state.runtime = runtime
    app.state.read_cache = read_cache
    install_problem_handlers(app)
    _serve_work_and_guard(app, runtime, read_cache)
    from core.http.operations import router as operations

    app.include_router(operations)
    v1 = APIRouter(prefix="/v1")
    for target in ["core.http.events:router", *api_routers]:
        module, _, attribute = target.partition(":")
        v1.include_router(getattr(importlib.import_module(module), attribute))
    app.include_router(v1)
    from core.http.metrics import install_metrics

    install_metrics(app, runtime)
    return app


def build_read_cache(settings: Settings) -> ReadCache[Any] | None:
    """The worker's cache of checkout and key reads: on PostgreSQL, unless turned off."""
    if settings.api_read_cache <= 0 or not settings.database_url.startswith("postgresql"):
        return None
    return ReadCache(settings.database_url, max_entries=settings.api_read_cache)


def _listening(read_cache: ReadCache[Any] | None) -> Any:
    """The app's lifespan: the cache listens for changes while the app serves. What the worker
    built before serving (the program, the app, the libraries) lives as long as it does, so it
    is moved out of the collector's sight (``gc.freeze``) until it stops: every full collection
    scanned it all again, 127 ms for the 144,000 objects of a fresh worker on the 2-core
    benchmark machine, several times a minute under event batches, held account locks
    included."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gc.collect()
        gc.freeze()
        if read_cache is not None:
            read_cache.start()
        try:
            yield
        finally:
            if read_cache is not None:
                read_cache.stop()
            gc.unfreeze()

    return lifespan


def _serve_work_and_guard(
    app: FastAPI, runtime: Runtime, read_cache: ReadCache[Any] | None
) -> None:
    """Work endpoints enqueue goes to the configured broker; every ``/v1`` request passes the
    guard (key lookup, rate limit, body limit, idempotency) within the worker's in-flight limit,
    and the schema says so."""
    from core.http.guard import ApiGuard
    from core.http.openapi import document_guard
    from core.http.shedding import LoadShedder
    from core.processes import setup_broker

    setup_broker(runtime.settings)
    app.add_middleware(ApiGuard, runtime=runtime, read_cache=read_cache)
    # Added last, so outermost: a request over the limit is refused before the guard's lookups.
    app.add_middleware(LoadShedder, limit=runtime.settings.api_max_in_flight)
    document_guard(app)
