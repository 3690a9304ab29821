"""What the engine counts for Prometheus, and the gauges packages read from the database.

Two kinds of metrics (``GET /metrics`` shows both; see docs/http.md "Metrics"):

* **Process metrics** count what a process does: events its intake took (accepted, duplicate,
  rejected) and how long checkout requests took. They are ``prometheus_client`` counters and
  histograms, made on first use (so a process that sets ``PROMETHEUS_MULTIPROC_DIR`` first, as
  ``serve --workers N`` and the worker do, keeps them in that directory, where every process's
  values are summed).
* **Database gauges** say what the database holds now (messages by channel and status, active
  journeys, handler failures). Each is a :class:`DatabaseGauge`, read at scrape time with one
  cheap ``GROUP BY``, so every worker process reports the same truth. A package registers its
  own from its wiring with :func:`register_database_gauge`; core never imports the package.

Importing this module imports neither ``prometheus_client`` nor the web stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

if TYPE_CHECKING:
    from core.events.intake import IngestReport

EVENT_OUTCOMES = ("accepted", "duplicate", "rejected")
# Checkout answers in milliseconds; the last buckets catch a slow database.
CHECKOUT_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0,
)  # fmt: skip

Rows = Iterable[tuple[Sequence[str], float]]  # (label values in the gauge's order, value)


@dataclass(frozen=True)
class DatabaseGauge:
    """A gauge read from the database when scraped: ``read(conn)`` gives its rows."""

    name: str  # e.g. "loyalty_messages"
    documentation: str
    labels: tuple[str, ...]
    read: Callable[[Connection], Rows]


database_gauges: list[DatabaseGauge] = []


def register_database_gauge(gauge: DatabaseGauge) -> None:
    """Add a gauge to ``/metrics`` (once; another gauge under a taken name is a bug)."""
    for known in database_gauges:
        if known.name == gauge.name:
            if known != gauge:
                raise ValueError(f"a database gauge named {gauge.name} is already registered")
            return
    database_gauges.append(gauge)


@dataclass(frozen=True)
class ProcessMetrics:
    events: Any  # prometheus_client.Counter
    checkout_seconds: Any  # prometheus_client.Histogram


@lru_cache(maxsize=1)
def process_metrics() -> ProcessMetrics:
    """This process's counters and histogram, made on first use."""
    from prometheus_client import Counter, Histogram, disable_created_metrics

    disable_created_metrics()  # no *_created series beside each counter and histogram
    events = Counter(
        "loyalty_events_ingested",
        "Events the intake took, by where they came from and what became of them.",
        ["source", "outcome"],
    )
    checkout = Histogram(
        "loyalty_checkout_request_seconds",
        "Time to answer a checkout request, by endpoint (path template).",
        ["endpoint"],
        buckets=CHECKOUT_BUCKETS,
    )
    return ProcessMetrics(events=events, checkout_seconds=checkout)


def count_ingested(source: str, report: IngestReport) -> None:
    """Count an intake's report under ``source`` (``api``, ``actor``)."""
    events = process_metrics().events
    for outcome in EVENT_OUTCOMES:
        events.labels(source=source, outcome=outcome).inc(getattr(report, outcome))


def show_sources(*sources: str) -> None:
    """Let each source's counters show (at 0) before it has counted anything."""
    events = process_metrics().events
    for source in sources:
        for outcome in EVENT_OUTCOMES:
            events.labels(source=source, outcome=outcome)


def observe_checkout(endpoint: str, seconds: float) -> None:
    process_metrics().checkout_seconds.labels(endpoint=endpoint).observe(seconds)


def show_checkout_endpoints(endpoints: Iterable[str]) -> None:
    """Let each endpoint's histogram show (empty) before its first request."""
    histogram = process_metrics().checkout_seconds
    for endpoint in endpoints:
        histogram.labels(endpoint=endpoint)


def handler_failures_by_handler_and_status(conn: Connection) -> Rows:
    """Rows of ``handler_failures`` per handler and status (failed, waiting, resolved)."""
    from core.events.tables import handler_failures as t

    query = select(t.c.handler, t.c.status, func.count()).group_by(t.c.handler, t.c.status)
    return [((handler, status), count) for handler, status, count in conn.execute(query)]


register_database_gauge(
    DatabaseGauge(
        name="loyalty_handler_failures",
        documentation=(
            "Handler failures kept, by handler and status: failed and waiting are open, "
            "resolved were retried successfully."
        ),
        labels=("handler", "status"),
        read=handler_failures_by_handler_and_status,
    )
)
