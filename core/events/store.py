"""Reading the event stores (the writing side is ``core.events.intake``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from core.events.tables import events, rejected_events


def fetch_rejected(conn: Connection, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest dead-lettered inputs, with their reasons and raw payloads."""
    query = select(rejected_events).order_by(rejected_events.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def count_events(conn: Connection) -> dict[str, int]:
    """Stored events per type."""
    query = select(events.c.type, func.count()).group_by(events.c.type).order_by(events.c.type)
    return {kind: count for kind, count in conn.execute(query).all()}


def member_summaries(conn: Connection) -> list[dict[str, Any]]:
    """Each member with paid orders, paid total and refunded total (for reports and the demo)."""
    from core.events.tables import members, orders, refunds

    paid = (
        select(
            orders.c.member_id, func.count().label("orders"), func.sum(orders.c.total).label("paid")
        )
        .group_by(orders.c.member_id)
        .subquery()
    )
    refunded = (
        select(refunds.c.member_id, func.sum(refunds.c.amount).label("refunded"))
        .group_by(refunds.c.member_id)
        .subquery()
    )
    query = (
        select(members, paid.c.orders, paid.c.paid, refunded.c.refunded)
        .outerjoin(paid, paid.c.member_id == members.c.member_id)
        .outerjoin(refunded, refunded.c.member_id == members.c.member_id)
        .order_by(members.c.first_seen_at, members.c.member_id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]
