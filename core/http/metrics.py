"""``GET /metrics``: Prometheus metrics of the served engine, and the checkout timing.

The answer has this process's counters and histograms (or, under ``serve --workers N``, every
worker's, summed from ``PROMETHEUS_MULTIPROC_DIR``) and the database gauges packages registered
(:mod:`core.metrics`), read now. It is in the Prometheus text format, or OpenMetrics when the
scraper asks for it. No API key, like ``/livez``; ``LOYALTY_API_METRICS=false`` removes it.

:class:`CheckoutTiming` times every request under :data:`TIMED_PREFIX` that a route's path
template matches, labelled with the template
(``/v1/checkout/reservations/{reservation_id}/release``), so ids never become labels; paths no
route has are not observed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from sqlalchemy import Engine
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from core.http.deps import runtime_of
from core.metrics import (
    DatabaseGauge,
    database_gauges,
    observe_checkout,
    show_checkout_endpoints,
    show_sources,
)
from core.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])
TIMED_PREFIX = "/v1/checkout/"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, runtime: Annotated[Runtime, Depends(runtime_of)]) -> Response:
    """Prometheus metrics: process counters and histograms, database gauges read now."""
    from prometheus_client.exposition import choose_encoder

    show_sources("api")
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    body = encoder(Exposition(runtime.engine, database_gauges))  # type: ignore[arg-type]
    return Response(content=body, headers={"Content-Type": content_type})


class Exposition:
    """What one scrape shows: the process metrics, then the database gauges."""

    def __init__(self, engine: Engine, gauges: Sequence[DatabaseGauge]) -> None:
        self.engine, self.gauges = engine, gauges

    def collect(self) -> Iterator[Any]:
        yield from process_collector().collect()
        yield from collect_database(self.engine, self.gauges)


def process_collector() -> Any:
    """Every worker's metrics summed from the multiprocess directory, or this process's."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        from prometheus_client.multiprocess import MultiProcessCollector

        return MultiProcessCollector(None, path=directory)
    from prometheus_client import REGISTRY

    return REGISTRY


def collect_database(engine: Engine, gauges: Sequence[DatabaseGauge]) -> Iterator[Any]:
    """Each gauge read now, in one connection; ``loyalty_metrics_database_up`` is 0 when one
    could not be read (it is then left out, and the error logged with the gauge's name)."""
    from prometheus_client.core import GaugeMetricFamily

    read_all = True
    families = []
    try:
        with engine.connect() as conn:
            for gauge in gauges:
                family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels)
                try:
                    rows = list(gauge.read(conn))
                except Exception:
                    log.exception("metrics: could not read %s from the database", gauge.name)
                    conn.rollback()
                    read_all = False
                    continue
                for labels, value in rows:
                    family.add_metric([_label(v) for v in labels], float(value))
                families.append(family)
    except Exception:
        log.exception("metrics: could not connect to the database for the database gauges")
        read_all = False
    yield from families
    up = GaugeMetricFamily(
        "loyalty_metrics_database_up",
        "1 when every database gauge of this scrape was read, else 0 (the log says why).",
    )
    up.add_metric([], 1.0 if read_all else 0.0)
    yield up


def _label(value: object) -> str:
    return "none" if value is None else str(value)


class CheckoutTiming:
    """ASGI middleware: observe ``loyalty_checkout_request_seconds`` for requests whose path
    matches one of ``templates``, from the request's start to the end of its answer (the
    guard's key lookup, rate limit and idempotency included)."""

    def __init__(self, app: ASGIApp, *, templates: Sequence[str]) -> None:
        self.app = app
        self.patterns = [(compile_path(template)[0], template) for template in templates]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.endpoint(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            observe_checkout(endpoint, time.perf_counter() - started)

    def endpoint(self, scope: Scope) -> str | None:
        path = scope["path"]
        if not path.startswith(TIMED_PREFIX):
            return None
        return next((t for pattern, t in self.patterns if pattern.fullmatch(path)), None)


def route_paths(app: FastAPI) -> list[str]:
    """Every route's full path template. FastAPI keeps an included router whole (its
    ``iter_route_contexts`` gives each route with the prefixes above it); before it did, the
    app's routes were already flat."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI
        return [
            path for route in app.routes if isinstance(path := getattr(route, "path", None), str)
        ]
    return [context.path for context in iter_route_contexts(app.routes) if context.path]


def install_metrics(app: FastAPI, runtime: Runtime) -> None:
    """``/metrics`` (unless ``LOYALTY_API_METRICS`` is false) and the checkout timing, over
    the checkout routes the app has now: call it after every router is included."""
    if runtime.settings.api_metrics:
        app.include_router(router)
    templates = sorted({path for path in route_paths(app) if path.startswith(TIMED_PREFIX)})
    app.add_middleware(CheckoutTiming, templates=templates)
    show_checkout_endpoints(templates)
