"""Campaigns reacting to events, inside the intake transaction: exits first, then enrolments.

``exit_on`` ends a journey the moment its event is stored (an event that happened before the
member entered does not count), and cancels the messages its steps queued that no provider has
yet (a push deferred by quiet hours). ``event`` triggers (with ``when:``) and
``referral_qualified`` enrol the event's member; the journeys' first steps run after the commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from campaigns.assignment import control_share
from campaigns.controls import paused_ids
from campaigns.definitions import Campaign
from campaigns.goals import record_conversions
from campaigns.journeys import Candidate, enrol, exit_journeys, fetch_active
from campaigns.tables import journey_steps
from core.cel.history import Moments, fetch_histories
from core.cel.variables import (
    VariableSettings,
    event_variables,
    member_fields_read,
    member_variables,
)
from core.db import in_values
from core.events.handlers import HandlerContext
from core.events.types import Event, OrderPaid

REFERRAL_EVENT = "referral.qualified"


def react(ctx: HandlerContext, events: Sequence[Event]) -> list[str]:
    """Apply exits and event triggers for a batch; returns the new journeys to advance."""
    assert ctx.program is not None, "campaigns react with a loaded program"
    campaigns: Mapping[str, Campaign] = ctx.program.campaigns
    exit_for_events(ctx, events, campaigns)
    converted = record_conversions(ctx.conn, events, campaigns)
    if converted:
        ctx.tally("conversions", converted)
    types = {event.type for event in events}
    triggered = [c for c in campaigns.values() if _trigger_type(c) in types]
    if not triggered:  # most batches (orders, reviews) trigger nothing: no further query
        return []
    paused = paused_ids(ctx.conn, {c.id: c for c in triggered})
    control = control_share(ctx.program)
    created: list[str] = []
    for campaign in triggered:
        if campaign.id in paused:
            continue
        matching = [event for event in events if event.type == _trigger_type(campaign)]
        candidates = _candidates(ctx, campaign, matching)
        created += enrol(ctx.conn, campaign, candidates, now=ctx.now, control=control)
    if created:
        ctx.tally("journeys_entered", len(created))
    return created


def _trigger_type(campaign: Campaign) -> str | None:
    trigger = campaign.trigger
    if trigger.event is not None:
        return str(trigger.event)
    return REFERRAL_EVENT if trigger.referral_qualified is not None else None


def exit_for_events(
    ctx: HandlerContext, events: Sequence[Event], campaigns: Mapping[str, Campaign]
) -> list[str]:
    """End the journeys an event of their ``exit_on`` reached; cancel their pending messages."""
    exiting = {cid: set(c.exit_on) for cid, c in campaigns.items() if c.exit_on}
    types = set().union(*exiting.values()) if exiting else set()
    relevant = [event for event in events if event.type in types]
    if not relevant:
        return []
    by_member: dict[str, list[Event]] = defaultdict(list)
    for event in relevant:
        by_member[event.member_id].append(event)
    reasons: dict[str, list[str]] = defaultdict(list)
    for journey in fetch_active(ctx.conn, list(by_member), list(exiting)):
        reached = [
            event
            for event in by_member[journey.member_id]
            if event.type in exiting[journey.campaign_id]
            and event.occurred_at >= journey.entered_at
        ]
        if reached:
            reasons[f"exit_on:{reached[0].type}"].append(journey.journey_id)
    ended: list[str] = []
    for reason, journey_ids in reasons.items():
        ended += exit_journeys(ctx.conn, journey_ids, reason=reason, now=ctx.now)
    cancel_pending_messages(ctx, ended)
    if ended:
        ctx.tally("journeys_exited", len(ended))
    return ended


def cancel_pending_messages(ctx: HandlerContext, journey_ids: Sequence[str]) -> list[str]:
    """Cancel what the journeys' send steps queued and no provider has taken yet."""
    from notifications.states import cancel_messages

    if not journey_ids:
        return []
    query = select(journey_steps.c.message_id).where(
        in_values(ctx.conn, journey_steps.c.journey_id, journey_ids),
        journey_steps.c.message_id.is_not(None),
    )
    message_ids = [m for m in ctx.conn.execute(query).scalars() if m]
    return cancel_messages(ctx.conn, message_ids, reason="journey_exited", now=ctx.now)


def _candidates(
    ctx: HandlerContext, campaign: Campaign, events: Sequence[Event]
) -> list[Candidate]:
    when = campaign.trigger.when
    chosen = events if when is None else _matching(ctx, when, events)
    return [Candidate(journey_member(e), f"event:{e.id}", event_context(e)) for e in chosen]


def journey_member(event: Event) -> str:
    """Whose journey an event starts: its member's; a referral's is the referee's (a referrer
    may have many referrals settle at once, each rewarded by its own journey)."""
    if event.type == REFERRAL_EVENT:
        return str(event.stored_data().get("referee_member_id") or event.member_id)
    return event.member_id


def _matching(ctx: HandlerContext, when: Any, events: Sequence[Event]) -> list[Event]:
    settings = VariableSettings.from_program(ctx.program)
    fields = member_fields_read([when.source])
    histories = (
        fetch_histories(
            ctx.conn,
            [e.member_id for e in events],
            program=ctx.program,
            fields=fields,
            moments=Moments.of(events, settings.window),
        )
        if fields != frozenset()
        else {}
    )  # a when: that reads no member field (event.data.direction == "up") fetches nothing
    chosen = []
    for event in events:
        exclude = event.data.order_id if isinstance(event.data, OrderPaid) else None
        variables = event_variables(event, settings.zone)
        if event.member_id in histories:
            variables["member"] = member_variables(
                histories[event.member_id], settings, at=event.occurred_at,
                exclude_order=exclude, fields=fields,
            )  # fmt: skip
        if when.is_true(variables):
            chosen.append(event)
    return chosen


def event_context(event: Event) -> dict[str, Any]:
    """What a journey keeps of the event that started it (JSON: amounts as strings)."""
    data = event.stored_data()
    context: dict[str, Any] = {
        "event": {"id": event.id, "type": event.type, "occurred_at": _iso(event.occurred_at)}
    }
    if event.type == "order.paid":
        context["order"] = basket(data, order_id=data.get("order_id"))
    if event.type == "cart.updated":
        context["cart"] = basket(data, cart_id=data.get("cart_id"))
    if event.type == REFERRAL_EVENT:
        context["referral"] = {
            "referrer_id": data.get("referrer_member_id"),
            "referee_id": data.get("referee_member_id") or event.member_id,
            "order_id": data.get("order_id"),
        }
    return context


def basket(data: Mapping[str, Any], **ids: Any) -> dict[str, Any]:
    """An order's or cart's template value: total, item_count, categories, items."""
    items = [
        {
            "sku": item.get("sku"),
            "name": item.get("name", ""),
            "category": item.get("category", ""),
            "price": str(item.get("price", "0")),
            "qty": int(item.get("qty", 1)),
        }
        for item in data.get("items") or []
    ]
    return {
        **ids,
        "total": str(data.get("total", "0")),
        "item_count": sum(item["qty"] for item in items),
        "categories": sorted({item["category"] for item in items if item["category"]}),
        "items": items,
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat()
