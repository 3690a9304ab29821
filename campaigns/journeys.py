"""Journeys in the database: enrolling members, finding due ones, ending them.

Enrolment is set-based: candidates (a member, the trigger instance that brought them, its
context) are filtered by one query for active journeys and the re-entry window, then inserted in
one statement that ignores any conflict. The primary key, derived from campaign, member and
trigger instance, makes a second enrolment by the same trigger a no-op; the partial unique index
on active journeys makes a second concurrent enrolment of the member a no-op (see tables.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, case, func, select, update

from campaigns.assignment import GLOBAL_CONTROL, HOLDOUT, assign_arm, steps_of, version_of
from campaigns.definitions import Campaign, step_ids
from campaigns.tables import journeys
from core.db import in_values, insert_ignoring_any_conflict

ENROL_CHUNK = 1_000  # rows per INSERT; 10,000 enrolments take ten statements


@dataclass(frozen=True)
class Candidate:
    """A member a trigger brought to a campaign; ``trigger_key`` names the trigger instance."""

    member_id: str
    trigger_key: str
    context: Mapping[str, Any] = field(default_factory=dict)


def journey_id_for(campaign_id: str, member_id: str, trigger_key: str) -> str:
    key = f"{campaign_id}\x1f{member_id}\x1f{trigger_key}"
    return "j_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def blocked_members(
    conn: Connection, campaign: Campaign, member_ids: Sequence[str], *, now: datetime
) -> set[str]:
    """Members who may not enter now: in a journey of it, or inside its re-entry window.

    Without ``reentry_after`` a member may enter again once their journey has ended; the same
    trigger instance (event, cart version, firing, birthday year) never enrols twice.
    """
    if not member_ids:
        return set()
    last_entry = func.max(journeys.c.entered_at)
    active = func.sum(case((journeys.c.status == "active", 1), else_=0))
    rows = conn.execute(
        select(journeys.c.member_id, last_entry, active)
        .where(
            journeys.c.campaign_id == campaign.id, in_values(conn, journeys.c.member_id, member_ids)
        )
        .group_by(journeys.c.member_id)
    )
    window = campaign.reentry_after
    return {
        member_id
        for member_id, entered, running in rows
        if running or (window is not None and entered > now - window)
    }


def enrol(
    conn: Connection,
    campaign: Campaign,
    candidates: Sequence[Candidate],
    *,
    now: datetime,
    control: Decimal = Decimal(0),
) -> list[str]:
    """Enrol the candidates who may enter; returns the ids of new journeys that have steps to
    run. Holdout journeys, and a marketing campaign's journeys of members in the program's
    global control group (``control``: its share), are stored, complete, and run nothing."""
    first: dict[str, Candidate] = {}
    for candidate in candidates:
        first.setdefault(candidate.member_id, candidate)
    blocked = blocked_members(conn, campaign, list(first), now=now)
    version = version_of(campaign)
    rows = [
        _row(campaign, candidate, now, version, control)
        for member_id, candidate in first.items()
        if member_id not in blocked
    ]
    created: list[str] = []
    for start in range(0, len(rows), ENROL_CHUNK):
        chunk = rows[start : start + ENROL_CHUNK]
        statement = insert_ignoring_any_conflict(conn, journeys).returning(
            journeys.c.journey_id, journeys.c.status
        )
        created += [jid for jid, status in conn.execute(statement, chunk) if status == "active"]
    return created


def _row(
    campaign: Campaign, candidate: Candidate, now: datetime, version: str, control: Decimal
) -> dict[str, Any]:
    arm = assign_arm(campaign, candidate.member_id, control=control)
    steps = steps_of(campaign, arm) or ()
    first_step = step_ids(steps)[0] if steps else None
    holdout = arm in (HOLDOUT, GLOBAL_CONTROL)
    return {
        "journey_id": journey_id_for(campaign.id, candidate.member_id, candidate.trigger_key),
        "campaign_id": campaign.id,
        "member_id": candidate.member_id,
        "enrolment_key": candidate.trigger_key[:400],
        "version": version,
        "arm": arm,
        "status": "completed" if holdout else "active",
        "reason": arm if holdout else None,
        "step_id": first_step,
        "next_run_at": None if holdout else now,
        "attempts": 0,
        "last_error": None,
        "context": dict(candidate.context),
        "entered_at": now,
        "updated_at": now,
        "ended_at": now if holdout else None,
    }


def exit_journeys(
    conn: Connection, journey_ids: Sequence[str], *, reason: str, now: datetime
) -> list[str]:
    """End active journeys; returns the ids that were active (the others had already ended)."""
    if not journey_ids:
        return []
    result = conn.execute(
        update(journeys)
        .where(in_values(conn, journeys.c.journey_id, journey_ids), journeys.c.status == "active")
        .values(status="exited", reason=reason[:64], ended_at=now, updated_at=now, next_run_at=None)
        .returning(journeys.c.journey_id)
    )
    return list(result.scalars())


def fetch_active(
    conn: Connection, member_ids: Sequence[str], campaign_ids: Sequence[str]
) -> list[Any]:
    """Active journeys of these members in these campaigns."""
    if not member_ids or not campaign_ids:
        return []
    return list(
        conn.execute(
            select(
                journeys.c.journey_id,
                journeys.c.campaign_id,
                journeys.c.member_id,
                journeys.c.entered_at,
            ).where(
                journeys.c.status == "active",
                in_values(conn, journeys.c.member_id, member_ids),
                journeys.c.campaign_id.in_(list(campaign_ids)),
            )
        )
    )


def next_due_time(conn: Connection, *, after: datetime | None) -> datetime | None:
    """The earliest time after ``after`` at which an active journey has a step due."""
    query = select(func.min(journeys.c.next_run_at)).where(journeys.c.status == "active")
    if after is not None:
        query = query.where(journeys.c.next_run_at > after)
    return conn.execute(query).scalar()


def due_journey_ids(conn: Connection, *, now: datetime, limit: int) -> list[str]:
    """Ids of active journeys with a step due at ``now``, the most overdue first."""
    return list(
        conn.execute(
            select(journeys.c.journey_id)
            .where(journeys.c.status == "active", journeys.c.next_run_at <= now)
            .order_by(journeys.c.next_run_at)
            .limit(limit)
        ).scalars()
    )
