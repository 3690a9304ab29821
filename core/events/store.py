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
