"""What operators ask of the delivery records: the log, a summary, replays, unsubscribes.

Every address shown is masked (138****0001, a***@example.com); errors were scrubbed when
stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select, update

from notifications.errors import MessageNotFound, ReplayRefused
from notifications.store import add_unsubscribe
from notifications.tables import messages
from notifications.tokens import UnsubscribeRequest, load_secret, read_token

REPLAYABLE = ("dead", "failed", "unknown")
LOG_COLUMNS = (
    "message_id", "member_id", "campaign_id", "template_id", "kind", "channel", "to_masked",
    "status", "reason", "attempts", "provider", "provider_message_id", "error", "not_before",
    "created_at", "sent_at", "delivery",
)  # fmt: skip


@dataclass(frozen=True)
class LogEntry:
    """One message as ``notifications log`` shows it (``to`` masked)."""

    message_id: str
    member_id: str
    campaign_id: str | None
    template_id: str
    kind: str
    channel: str | None
    to: str | None
    status: str
    reason: str | None
    attempts: int
    provider: str | None
    provider_message_id: str | None
    error: str | None
    not_before: datetime | None
    created_at: datetime
    sent_at: datetime | None
    delivery: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fetch_log(
    conn: Connection, *, member_id: str | None = None, limit: int = 100
) -> list[LogEntry]:
    """The newest messages first, all or one member's."""
    stmt = select(*(messages.c[name] for name in LOG_COLUMNS))
    if member_id is not None:
        stmt = stmt.where(messages.c.member_id == member_id)
    stmt = stmt.order_by(messages.c.created_at.desc(), messages.c.message_id).limit(limit)
    return [
        LogEntry(**{("to" if k == "to_masked" else k): v for k, v in row.items()})
        for row in conn.execute(stmt).mappings()
    ]


def summarize(conn: Connection) -> dict[tuple[str, str], int]:
    """(status, channel) → how many messages; a channel of ``-`` means none was receivable."""
    stmt = select(messages.c.status, messages.c.channel, func.count()).group_by(
        messages.c.status, messages.c.channel
    )
    return {(status, channel or "-"): count for status, channel, count in conn.execute(stmt)}


def replay(
    engine: Engine, *, now: datetime, message_id: str | None = None, all_dead: bool = False
) -> list[str]:
    """Queue again one dead, failed or unknown message, or every dead one; returns the ids.

    Attempts start over from zero; the earlier ones stay in ``notification_attempts``.
    """
    with engine.begin() as conn:
        ids = _replayable(conn, message_id=message_id, all_dead=all_dead)
        if ids:
            conn.execute(
                update(messages)
                .where(and_(messages.c.message_id.in_(ids), messages.c.status.in_(REPLAYABLE)))
                .values(status="queued", reason="replayed", attempts=0, not_before=now,
                        error=None, sending_since=None, updated_at=now)
            )  # fmt: skip
    return ids


def _replayable(conn: Connection, *, message_id: str | None, all_dead: bool) -> list[str]:
    if message_id is not None:
        status = conn.execute(
            select(messages.c.status).where(messages.c.message_id == message_id)
        ).scalar()
        if status is None:
            raise MessageNotFound(message_id)
        if status not in REPLAYABLE:
            raise ReplayRefused(message_id, status)
        return [message_id]
    if not all_dead:
        return []
    stmt = select(messages.c.message_id).where(messages.c.status == "dead")
    return list(conn.execute(stmt.order_by(messages.c.message_id)).scalars())


def apply_unsubscribe(
    conn: Connection, token: str, *, now: datetime, secret: str | None = None
) -> tuple[UnsubscribeRequest, bool]:
    """Apply an unsubscribe link's token; True if this stopped the channel (False: already)."""
    request = read_token(load_secret(conn, secret), token)
    added = add_unsubscribe(
        conn,
        member_id=request.member_id,
        channel=request.channel,
        now=now,
        message_id=request.message_id,
        source="link",
    )
    return request, added
