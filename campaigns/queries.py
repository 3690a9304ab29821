"""Reads of the package's tables for the commands, ``members show`` and the demo.

Each is one set-based query (a ``GROUP BY`` over journeys, or the rows of given ids); nothing
here writes. The engine's own reads (due journeys, blocked members) stay in journeys.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, select

from campaigns.tables import controls, journey_steps, journeys
from core.db import in_values


@dataclass(frozen=True)
class Control:
    """A status set by ``campaigns pause|resume``, when and with which note."""

    status: str
    changed_at: datetime
    note: str | None


@dataclass(frozen=True)
class Activity:
    """A campaign's journeys active now and those entered in a period."""

    active: int = 0
    entered: int = 0


def fetch_control_rows(conn: Connection) -> dict[str, Control]:
    """Campaign id → the override stored by ``campaigns pause|resume``."""
    rows = conn.execute(select(controls))
    return {row.campaign_id: Control(row.status, row.changed_at, row.note) for row in rows}


def fetch_activity(conn: Connection, *, start: datetime, end: datetime) -> dict[str, Activity]:
    """Campaign id → journeys active now, and journeys entered in ``[start, end)``."""
    entered = (journeys.c.entered_at >= start) & (journeys.c.entered_at < end)
    query = select(
        journeys.c.campaign_id,
        func.sum(case((journeys.c.status == "active", 1), else_=0)),
        func.sum(case((entered, 1), else_=0)),
    ).group_by(journeys.c.campaign_id)
    return {
        campaign_id: Activity(int(active or 0), int(count or 0))
        for campaign_id, active, count in conn.execute(query)
    }


def count_journeys(
    conn: Connection, *, campaign_id: str | None = None
) -> dict[str, dict[tuple[str, str, str | None], int]]:
    """Campaign id → (arm, status, reason) → journeys."""
    query = select(
        journeys.c.campaign_id, journeys.c.arm, journeys.c.status, journeys.c.reason, func.count()
    ).group_by(journeys.c.campaign_id, journeys.c.arm, journeys.c.status, journeys.c.reason)
    if campaign_id is not None:
        query = query.where(journeys.c.campaign_id == campaign_id)
    counts: dict[str, dict[tuple[str, str, str | None], int]] = defaultdict(dict)
    for campaign, arm, status, reason, count in conn.execute(query):
        counts[campaign][(arm, status, reason)] = int(count)
    return dict(counts)


def fetch_journeys(conn: Connection, journey_ids: Sequence[str]) -> list[Any]:
    """The journeys of these ids, in the order of their entry."""
    if not journey_ids:
        return []
    query = (
        select(journeys)
        .where(in_values(conn, journeys.c.journey_id, list(journey_ids)))
        .order_by(journeys.c.entered_at, journeys.c.member_id, journeys.c.journey_id)
    )
    return list(conn.execute(query))


def fetch_member_journeys(conn: Connection, member_id: str, *, limit: int) -> list[Any]:
    """The member's journeys, the newest first."""
    query = (
        select(journeys)
        .where(journeys.c.member_id == member_id)
        .order_by(journeys.c.entered_at.desc(), journeys.c.journey_id)
        .limit(limit)
    )
    return list(conn.execute(query))


def fetch_steps(conn: Connection, journey_ids: Sequence[str]) -> dict[str, list[Any]]:
    """Journey id → the steps it ran, in the order they ran."""
    if not journey_ids:
        return {}
    query = (
        select(journey_steps)
        .where(in_values(conn, journey_steps.c.journey_id, list(journey_ids)))
        .order_by(journey_steps.c.journey_id, journey_steps.c.executed_at)
    )
    found: dict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(query):
        found[row.journey_id].append(row)
    return dict(found)


def fetch_campaign_message_ids(conn: Connection) -> dict[str, list[str]]:
    """Campaign id → the message ids its journeys' send steps recorded."""
    query = (
        select(journeys.c.campaign_id, journey_steps.c.message_id)
        .join(journeys, journeys.c.journey_id == journey_steps.c.journey_id)
        .where(journey_steps.c.message_id.is_not(None))
    )
    found: dict[str, list[str]] = defaultdict(list)
    for campaign_id, message_id in conn.execute(query):
        found[campaign_id].append(message_id)
    return dict(found)


def due_journey_ids(conn: Connection, campaign_id: str, *, now: datetime) -> list[str]:
    """The campaign's active journeys with a step due at ``now``, the most overdue first."""
    query = (
        select(journeys.c.journey_id)
        .where(
            journeys.c.campaign_id == campaign_id,
            journeys.c.status == "active",
            journeys.c.next_run_at <= now,
        )
        .order_by(journeys.c.next_run_at, journeys.c.journey_id)
    )
    return list(conn.execute(query).scalars())


def journey_ids_entered_since(conn: Connection, campaign_id: str, *, since: datetime) -> set[str]:
    """Ids of the campaign's journeys entered at or after ``since``."""
    query = select(journeys.c.journey_id).where(
        journeys.c.campaign_id == campaign_id, journeys.c.entered_at >= since
    )
    return set(conn.execute(query).scalars())


def count_active(conn: Connection, campaign_id: str) -> int:
    query = select(func.count()).where(
        journeys.c.campaign_id == campaign_id, journeys.c.status == "active"
    )
    return int(conn.execute(query).scalar_one())


def fetch_entry_history(
    conn: Connection, campaign_id: str, member_ids: Sequence[str], *, excluding: Sequence[str]
) -> dict[str, tuple[int, datetime]]:
    """Member id → (their active journeys, their newest entry) in the campaign, leaving out
    the journeys ``excluding`` names."""
    if not member_ids:
        return {}
    active = func.sum(case((journeys.c.status == "active", 1), else_=0))
    query = (
        select(journeys.c.member_id, active, func.max(journeys.c.entered_at))
        .where(
            journeys.c.campaign_id == campaign_id,
            in_values(conn, journeys.c.member_id, list(member_ids)),
        )
        .group_by(journeys.c.member_id)
    )
    if excluding:
        query = query.where(~in_values(conn, journeys.c.journey_id, list(excluding)))
    return {member: (int(n or 0), entered) for member, n, entered in conn.execute(query)}
