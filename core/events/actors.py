"""The dramatiq actor other services enqueue events to: thin, it calls the one intake path."""

from __future__ import annotations

from typing import Any

from core.broker import actor
from core.events.errors import EventError


@actor(queue_name="events", max_retries=8, throws=(EventError,))
def ingest_event(payload: dict[str, Any]) -> None:
    """Ingest one event; a rejected one is dead-lettered by the intake, not retried."""
    from core.events.intake import Intake, ingest
    from core.metrics import count_ingested
    from core.runtime import get_runtime

    runtime = get_runtime()
    intake = Intake.for_runtime(runtime, source="actor", program=runtime.program_or_none())
    count_ingested("actor", ingest([payload], intake))
