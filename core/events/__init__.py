"""Event intake: validation, the idempotent event store, dead letters, projections, handlers.

Exceptions::

    EventError                 base of this package
    ├── EventRejected          an input line or payload failed validation (carries the reason)
    └── HandlerFailed          a subscribed handler raised while applying an accepted event
"""

from core.events.errors import EventError, EventRejected, HandlerFailed
from core.events.handlers import HandlerContext, handlers, subscribe
from core.events.intake import IngestReport, ingest, ingest_lines
from core.events.types import Event

__all__ = [
    "Event",
    "EventError",
    "EventRejected",
    "HandlerContext",
    "HandlerFailed",
    "IngestReport",
    "handlers",
    "ingest",
    "ingest_lines",
    "subscribe",
]
