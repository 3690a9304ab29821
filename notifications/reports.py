"""What reports read of the messages: counts, in a few set-based statements.

Other packages' reports (``campaigns report``, ``program report``) count messages here instead
of reading ``notification_messages`` themselves: what "sent" and "marketing" mean stays in this
package. Each function is one ``GROUP BY``: a report counts thousands of messages, and fetching
each one's state by id (notifications.states) would load them all to count them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Subquery, func, select

from notifications.tables import messages

SENT = "sent"
MARKETING = "marketing"


@dataclass(frozen=True)
class MessageCount:
    """How many of the campaign's messages went by ``channel`` (None: none receivable) and
    stand at ``status`` for ``reason``."""

    channel: str | None
    status: str
    reason: str | None
    count: int


def count_campaign_messages(conn: Connection, campaign_id: str) -> list[MessageCount]:
    """The campaign's messages counted by channel, status and reason."""
    keys = (messages.c.channel, messages.c.status, messages.c.reason)
    query = select(*keys, func.count()).where(messages.c.campaign_id == campaign_id).group_by(*keys)
    rows = [
        MessageCount(ch, status, reason, int(n)) for ch, status, reason, n in conn.execute(query)
    ]
    return sorted(rows, key=lambda m: (m.channel or "", m.status, m.reason or ""))


def count_with_a_sent_message(conn: Connection, links: Subquery) -> dict[str, int]:
    """Group → how many distinct items have at least one of their messages sent.

    ``links`` is the caller's subquery of ``(group, item, message_id)`` rows, e.g. a campaign's
    journey steps as (arm, journey id, message id): the count runs as one statement joined to
    the messages, and the caller's tables stay the caller's.
    """
    query = (
        select(links.c.group, func.count(func.distinct(links.c.item)))
        .select_from(links.join(messages, messages.c.message_id == links.c.message_id))
        .where(messages.c.status == SENT)
        .group_by(links.c.group)
    )
    return {str(group): int(count) for group, count in conn.execute(query)}


def count_marketing_sent(conn: Connection, *, since: datetime, until: datetime) -> dict[str, int]:
    """Member → marketing messages sent to them with ``since <= sent_at < until``.

    Marketing is the message's kind (``transactional`` ones are not counted); sent is its
    status now (a message sent then bounced still went out).
    """
    query = (
        select(messages.c.member_id, func.count())
        .where(
            messages.c.kind == MARKETING,
            messages.c.status == SENT,
            messages.c.sent_at >= since,
            messages.c.sent_at < until,
        )
        .group_by(messages.c.member_id)
    )
    return {member_id: int(count) for member_id, count in conn.execute(query)}
