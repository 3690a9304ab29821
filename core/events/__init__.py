"""Event intake: validation, the idempotent event store, dead letters, projections, handlers.

Exceptions::

    EventError                 base of this package
    └── EventRejected          an input line or payload failed validation (carries the reason)

A handler's own exception is never raised out of intake: it is recorded as a handler failure
and retried (core.events.failures, core.events.retry).
"""

from core.events.errors import EventError, EventRejected
from core.events.handlers import HandlerContext, handlers, subscribe
from core.events.intake import IngestReport, ingest, ingest_lines
from core.events.types import Event

__all__ = [
    "Event",
    "EventError",
    "EventRejected",
    "HandlerContext",
    "IngestReport",
    "handlers",
    "ingest",
    "ingest_lines",
    "subscribe",
]
