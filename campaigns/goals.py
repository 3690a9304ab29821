"""Goals: a conversion is the campaign's goal event within ``goal.within`` after entering.

At most one conversion per enrolment (the primary key is the journey), the first goal event
in the window. It is recorded whatever became of the journey: one that exited on that same
order still converted. Holdout and global-control journeys convert too, which is what lift is
measured against. Revenue is the converting order's total net of that order's refunds, read
when a report asks (refunds may come later).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, func, select

from campaigns.definitions import Campaign
from campaigns.tables import conversions, journeys
from core.db import bulk_insert, in_values
from core.events.types import Event, OrderPaid


def record_conversions(
    conn: Connection, events: Sequence[Event], campaigns: Mapping[str, Campaign]
) -> int:
    """Record the conversions these events make; returns how many are new."""
    goals = {cid: c.goal for cid, c in campaigns.items() if c.goal is not None}
    goal_events = {goal.event for goal in goals.values()}
    relevant = sorted((e for e in events if e.type in goal_events), key=lambda e: e.occurred_at)
    if not relevant:
        return 0
    # Each member's goal events by type, oldest first: a journey looks only at its own member's.
    timeline: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in relevant:
        timeline[(event.member_id, event.type)].append(event)
    since = relevant[0].occurred_at - max(goal.within for goal in goals.values())
    first: dict[str, dict[str, Any]] = {}
    for journey in _journeys_of(conn, {e.member_id for e in relevant}, goals, since=since):
        goal = goals[journey.campaign_id]
        converting = _first_in_window(
            timeline.get((journey.member_id, goal.event), []), journey, goal
        )
        if converting is not None:
            first.setdefault(journey.journey_id, _row(journey, converting))
    if not first:
        return 0
    rows = list(first.values())
    return len(
        bulk_insert(conn, conversions, rows, conflict_keys=["journey_id"], returning="journey_id")
    )


def _journeys_of(
    conn: Connection, member_ids: set[str], campaign_ids: Iterable[str], *, since: datetime
) -> list[Any]:
    """The members' journeys in these campaigns that entered late enough for an event of the
    batch to fall within their goal window, and have not converted yet (a member's later
    orders would only meet the primary key: 400 rows read and sent back each batch)."""
    query = select(
        journeys.c.journey_id, journeys.c.campaign_id, journeys.c.member_id, journeys.c.arm,
        journeys.c.entered_at,
    ).where(
        in_values(conn, journeys.c.member_id, sorted(member_ids)),
        journeys.c.campaign_id.in_(sorted(campaign_ids)),
        journeys.c.entered_at >= since,
        ~exists().where(conversions.c.journey_id == journeys.c.journey_id),
    )  # fmt: skip
    return list(conn.execute(query))


def _first_in_window(events: Sequence[Event], journey: Any, goal: Any) -> Event | None:
    """The first of the member's goal events (oldest first) within the journey's window."""
    start = bisect_left(events, journey.entered_at, key=lambda e: e.occurred_at)
    if start < len(events) and events[start].occurred_at <= journey.entered_at + goal.within:
        return events[start]
    return None


def _row(journey: Any, event: Event) -> dict[str, Any]:
    return {
        "journey_id": journey.journey_id,
        "campaign_id": journey.campaign_id,
        "member_id": journey.member_id,
        "arm": journey.arm,
        "event_id": event.id,
        "order_id": event.data.order_id if isinstance(event.data, OrderPaid) else None,
        "converted_at": event.occurred_at,
    }


def fetch_conversions(conn: Connection, campaign_id: str) -> list[dict[str, Any]]:
    """The campaign's conversions, oldest first, each with ``revenue``: the converting order's
    total net of that order's refunds (0.00 for a goal that is not an order)."""
    from decimal import Decimal

    from core.events.tables import orders, refunds

    refunded = (
        select(refunds.c.order_id, func.sum(refunds.c.amount).label("refunded"))
        .group_by(refunds.c.order_id)
        .subquery()
    )
    query = (
        select(conversions, orders.c.total, refunded.c.refunded)
        .select_from(
            conversions.outerjoin(orders, orders.c.order_id == conversions.c.order_id).outerjoin(
                refunded, refunded.c.order_id == conversions.c.order_id
            )
        )
        .where(conversions.c.campaign_id == campaign_id)
        .order_by(conversions.c.converted_at, conversions.c.journey_id)
    )
    zero = Decimal("0.00")
    found = []
    for row in conn.execute(query):
        revenue = max((row.total or zero) - Decimal(row.refunded or 0), zero)
        found.append({**row._mapping, "revenue": revenue.quantize(zero)})
    return found
