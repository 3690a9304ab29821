"""The notifications package's gauge on ``/metrics``: messages by channel and status, read from
the outbox when scraped (registered by the wiring; see core.metrics)."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from core.metrics import DatabaseGauge, Rows
from notifications.tables import messages


def messages_by_channel_and_status(conn: Connection) -> Rows:
    """One row per (channel, status) with messages; ``none`` for messages no channel could
    take (the member could receive none of those asked)."""
    query = select(messages.c.channel, messages.c.status, func.count()).group_by(
        messages.c.channel, messages.c.status
    )
    return [((channel or "none", status), n) for channel, status, n in conn.execute(query)]


MESSAGES = DatabaseGauge(
    name="loyalty_messages",
    documentation=(
        "Messages in the outbox by channel (email, sms, push, none) and status (queued, "
        "deferred, retrying, sending, sent, failed, suppressed, dead, unknown, cancelled)."
    ),
    labels=("channel", "status"),
    read=messages_by_channel_and_status,
)
