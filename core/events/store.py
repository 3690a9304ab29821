"""Reading the event stores (the writing side is ``core.events.intake``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from core.db import bulk_insert
from core.events.tables import events, handler_failures, rejected_events
from core.events.types import Event


def store_new_events(
    conn: Connection, batch: Sequence[Event], *, source: str, received_at: datetime
) -> list[Event]:
    """Store events whose id is not stored yet; returns those (the primary key decides)."""
    rows = [
        {
            "id": e.id,
            "type": e.type,
            "occurred_at": e.occurred_at,
            "member_id": e.member_id,
            "data": e.stored_data(),
            "source": source[:64],
            "received_at": received_at,
        }
        for e in batch
    ]
    inserted = set(bulk_insert(conn, events, rows, conflict_keys=["id"], returning="id"))
    return [e for e in batch if e.id in inserted]


def fetch_rejected(conn: Connection, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest dead-lettered inputs, with their reasons and raw payloads."""
    query = select(rejected_events).order_by(rejected_events.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def fetch_failures(
    conn: Connection, *, include_resolved: bool = False, limit: int = 100
) -> list[dict[str, Any]]:
    """Handler failures, open ones (failed, waiting) unless ``include_resolved``, oldest event
    first: the order they are retried in."""
    query = select(handler_failures)
    if not include_resolved:
        query = query.where(handler_failures.c.status != "resolved")
    query = query.order_by(handler_failures.c.occurred_at, handler_failures.c.id).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def count_failures(conn: Connection) -> dict[str, int]:
    """Handler failures per status."""
    query = select(handler_failures.c.status, func.count()).group_by(handler_failures.c.status)
    return {status: count for status, count in conn.execute(query).all()}


def count_events(conn: Connection) -> dict[str, int]:
    """Stored events per type."""
    query = select(events.c.type, func.count()).group_by(events.c.type).order_by(events.c.type)
    return {kind: count for kind, count in conn.execute(query).all()}


def count_events_per_day(
    conn: Connection, types: Sequence[str], *, zone: Any, since: datetime, until: datetime
) -> dict[tuple[Any, str], int]:
    """(day in ``zone``, type) → stored events of those types that occurred in [since, until)."""
    query = select(events.c.type, events.c.occurred_at).where(
        events.c.type.in_(list(types)), events.c.occurred_at >= since, events.c.occurred_at < until
    )
    counts: dict[tuple[Any, str], int] = {}
    for kind, at in conn.execute(query):
        key = (at.astimezone(zone).date(), kind)
        counts[key] = counts.get(key, 0) + 1
    return counts


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
