"""Finding messages that are due again, for the release job and its trigger.

Due: deferred or retrying messages whose time has come; queued messages older than
:data:`~notifications.dispatch.QUEUED_GRACE` (their actor message was lost, e.g. enqueued on
the in-process broker of a command that then exited); messages stuck in ``sending`` past their
lease (their worker died - see the recovery policy in :mod:`notifications.dispatch`). A
cancelled message is never due (:mod:`notifications.states`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, or_, select

from notifications.dispatch import QUEUED_GRACE
from notifications.tables import messages

RELEASE_LIMIT = 50_000  # per run; the next run takes the rest


def due_message_ids(engine: Engine, *, now: datetime, lease_s: float) -> list[str]:
    """Ids of the messages due at ``now``, oldest first."""
    condition = or_(
        and_(messages.c.status.in_(("deferred", "retrying")), messages.c.not_before <= now),
        and_(messages.c.status == "queued", messages.c.not_before <= now - QUEUED_GRACE),
        and_(
            messages.c.status == "sending",
            messages.c.sending_since <= now - timedelta(seconds=lease_s),
        ),
    )
    stmt = (
        select(messages.c.message_id)
        .where(condition)
        .order_by(messages.c.not_before)
        .limit(RELEASE_LIMIT)
    )
    with engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def next_due_time(engine: Engine, *, after: datetime) -> datetime | None:
    """The earliest time after ``after`` at which a waiting message becomes due."""
    waiting = or_(
        and_(messages.c.status.in_(("deferred", "retrying")), messages.c.not_before > after),
        and_(messages.c.status == "queued", messages.c.not_before > after - QUEUED_GRACE),
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.status, func.min(messages.c.not_before))
            .where(waiting)
            .group_by(messages.c.status)
        ).all()
    times = [when + (QUEUED_GRACE if status == "queued" else timedelta(0)) for status, when in rows]
    return min(times) if times else None
