"""Events the engine emits itself (``tier.changed``, ``tier.downgrade_pending``,
``referral.qualified``): stored in the event store like the shop's, once per deterministic id,
and handed to subscribers in the same transaction as the change that caused them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from core.events.handlers import HandlerContext, HandlerRegistry, handlers
from core.events.store import store_new_events
from core.events.types import INTERNAL_EVENT_TYPES, Event, EventData


class InternalData(EventData):
    """Data of an engine-emitted event: whatever the emitter says, kept as given."""


def internal_event(
    *, event_id: str, type: str, member_id: str, occurred_at: datetime, data: dict[str, Any]
) -> Event:
    """Build an engine event; ``event_id`` must be deterministic so a rerun emits nothing new."""
    if type not in INTERNAL_EVENT_TYPES:
        raise ValueError(
            f"{type!r} is not an engine event; use one of {sorted(INTERNAL_EVENT_TYPES)}"
        )
    return Event(
        id=event_id,
        type=type,
        occurred_at=occurred_at,
        member_id=member_id,
        data=InternalData(**data),
        raw_data=data,
    )


def emit(
    ctx: HandlerContext, emitted: Sequence[Event], *, registry: HandlerRegistry = handlers
) -> list[Event]:
    """Store engine events (an id already stored is skipped) and dispatch the new ones.

    Returns the events that were new. Runs inside the caller's transaction (``ctx.conn``).
    """
    fresh = store_new_events(ctx.conn, emitted, source="engine", received_at=ctx.now)
    if fresh:
        from core.events.failures import dispatch_isolated

        dispatch_isolated(ctx, fresh, registry)
    return fresh
