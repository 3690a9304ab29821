"""Events the engine emits itself (``tier.changed``, ``tier.downgrade_pending``,
``referral.qualified``): stored in the event store like the shop's, once per deterministic id,
and handed to subscribers in the same transaction as the change that caused them.

Whether a program emits one at all depends on its program.yaml (one tier level changes no
tier); the package that emits it says when, with :func:`register_event_source`, so ``check``
can tell a campaign waiting for an event that never comes (:func:`produced_events`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.events.handlers import HandlerContext, HandlerRegistry, handlers
from core.events.store import store_new_events
from core.events.types import INTERNAL_EVENT_TYPES, SHOP_EVENT_TYPES, Event, EventData


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


@dataclass(frozen=True)
class EventSource:
    """A package emits ``event_type`` for programs whose program.yaml ``produces`` it; ``needs``
    says what it takes, for ``check``'s hint ("two tier levels or more")."""

    event_type: str
    produces: Callable[[Any], bool]
    needs: str


event_sources: list[EventSource] = []


def register_event_source(source: EventSource) -> None:
    """Declare an engine event a package emits (once, however often it is registered)."""
    if source.event_type not in INTERNAL_EVENT_TYPES:
        raise ValueError(f"{source.event_type!r} is not an engine event")
    if source not in event_sources:
        event_sources.append(source)


def produced_events(program_file: Any) -> set[str]:
    """Every event type a program with this program.yaml sees: the shop's, and the engine's
    that a registered source emits for it."""
    emitted = {source.event_type for source in event_sources if source.produces(program_file)}
    return set(SHOP_EVENT_TYPES) | emitted


def event_needs(event_type: str) -> list[str]:
    """What each source of an engine event needs of program.yaml ([]: nothing emits it)."""
    return [source.needs for source in event_sources if source.event_type == event_type]
