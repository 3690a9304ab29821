"""Goals: a conversion is the campaign's goal event within ``goal.within`` after entering.

At most one conversion per enrolment (the primary key is the journey), the first goal event
in the window. It is recorded whatever became of the journey: one that exited on that same
order still converted. Holdout and global-control journeys convert too, which is what lift is
measured against. Revenue is the converting order's total net of that order's refunds, read
when a report asks (refunds may come later).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from campaigns.definitions import Campaign
from campaigns.tables import conversions, journeys
from core.db import in_values, insert_ignoring_conflicts
from core.events.types import Event, OrderPaid


def record_conversions(
    conn: Connection, events: Sequence[Event], campaigns: Mapping[str, Campaign]
) -> int:
    """Record the conversions these events make; returns how many are new."""
    goals = {cid: c.goal for cid, c in campaigns.items() if c.goal is not None}
    relevant = [e for e in events if any(goal.event == e.type for goal in goals.values())]
    if not relevant:
        return 0
    rows = [
        _row(journey, event)
        for journey in _journeys_of(conn, {e.member_id for e in relevant}, list(goals))
        for event in sorted(relevant, key=lambda e: e.occurred_at)
        if _converts(journey, event, goals[journey.campaign_id])
    ]
    first: dict[str, dict[str, Any]] = {}
    for row in rows:
        first.setdefault(row["journey_id"], row)
    if not first:
        return 0
    statement = insert_ignoring_conflicts(conn, conversions, ["journey_id"])
    result = conn.execute(statement.returning(conversions.c.journey_id), list(first.values()))
    return len(result.all())


def _journeys_of(conn: Connection, member_ids: set[str], campaign_ids: list[str]) -> list[Any]:
    query = select(
        journeys.c.journey_id, journeys.c.campaign_id, journeys.c.member_id, journeys.c.arm,
        journeys.c.entered_at,
    ).where(
        in_values(conn, journeys.c.member_id, sorted(member_ids)),
        journeys.c.campaign_id.in_(campaign_ids),
    )  # fmt: skip
    return list(conn.execute(query))


def _converts(journey: Any, event: Event, goal: Any) -> bool:
    return (
        event.member_id == journey.member_id
        and event.type == goal.event
        and journey.entered_at <= event.occurred_at <= journey.entered_at + goal.within
    )


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
