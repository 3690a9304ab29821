"""The campaigns package's event handler: journeys start and end as events are stored."""

from __future__ import annotations

from collections.abc import Sequence

from campaigns.jobs import enqueue_advance
from campaigns.triggers import react
from core.events.handlers import HandlerContext, subscribe
from core.events.types import INTERNAL_EVENT_TYPES, SHOP_EVENT_TYPES, Event


@subscribe(*sorted(SHOP_EVENT_TYPES | INTERNAL_EVENT_TYPES))
def start_and_end_journeys(ctx: HandlerContext, events: Sequence[Event]) -> None:
    """Exit journeys on their ``exit_on`` events, enrol event-triggered campaigns, and run
    the new journeys' first steps once the transaction commits."""
    created = react(ctx, events)
    if created:
        ctx.after_commit(lambda: enqueue_advance(created))
