"""Consent given again after an unsubscribe.

The members projection (core) applies the consents of ``member.registered``/``member.updated``;
an unsubscribe link is recorded here. When the shop later reports consent to a channel in an
event that happened after the unsubscribe, the newer choice wins and the unsubscribe is
lifted (an older event arriving late does not lift a newer unsubscribe). This is bookkeeping of
the member's choice, not program behaviour, so it runs with or without a loaded program.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.events.handlers import HandlerContext, subscribe
from core.events.types import Event, MemberProfile
from notifications.guardrails import CHANNELS
from notifications.store import fetch_unsubscribed_members, remove_unsubscribes


@subscribe("member.registered", "member.updated", needs_program=False)
def lift_unsubscribes_on_new_consent(ctx: HandlerContext, events: Sequence[Event]) -> None:
    # One read for the whole batch: members who never unsubscribed (nearly all) cost no DELETE.
    grants = {
        event.member_id: (event, granted)
        for event in events
        if isinstance(event.data, MemberProfile) and event.data.consents is not None
        if (granted := [c for c in CHANNELS if getattr(event.data.consents, c) is True])
    }
    if not grants:
        return
    unsubscribed = fetch_unsubscribed_members(ctx.conn, list(grants))
    for member_id in unsubscribed:
        event, granted = grants[member_id]
        remove_unsubscribes(
            ctx.conn, member_id=member_id, channels=granted, before=event.occurred_at
        )
