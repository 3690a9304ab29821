"""Messages as other packages see them: each one's state, and cancelling those not yet sent.

Campaigns record the message ids their ``send`` steps got from
:func:`notifications.requests.request_messages`; with these two functions they show each
step's outcome (``members show``, reports) and withdraw the messages of a journey that exited,
without reading this package's tables.

``cancel_messages`` takes a message out of every send path (see the states in
:mod:`notifications.dispatch`): it applies to the states in which no provider has the message,
``queued``, ``deferred`` and ``retrying`` (its earlier tries failed; it was not delivered). A
message ``sending`` or already sent, suppressed, failed, dead or unknown is left as it is.
``cancelled`` is final: the release job never selects it, and ``notifications replay`` refuses
it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import Connection, select, update

from notifications.store import among
from notifications.tables import messages

CANCELLABLE = ("queued", "deferred", "retrying")
_REASON_LENGTH = 64  # notification_messages.reason


@dataclass(frozen=True)
class MessageState:
    """Where one message stands: ``status`` with its ``reason`` (why suppressed, deferred,
    cancelled…), the channel chosen (None when none was receivable), when it may go
    (``not_before``, for a deferred or retrying one) and when it went (``sent_at``)."""

    message_id: str
    status: str
    reason: str | None
    channel: str | None
    not_before: datetime | None
    sent_at: datetime | None
    template_id: str
    campaign_id: str | None


def fetch_message_states(conn: Connection, message_ids: Collection[str]) -> dict[str, MessageState]:
    """The state of each message among ``message_ids`` (ids never recorded are absent)."""
    if not message_ids:
        return {}
    columns = [messages.c[field.name] for field in fields(MessageState)]
    stmt = select(*columns).where(among(conn, messages.c.message_id, set(message_ids)))
    return {row.message_id: MessageState(**row._mapping) for row in conn.execute(stmt)}


def cancel_messages(
    conn: Connection, message_ids: Collection[str], *, reason: str, now: datetime
) -> list[str]:
    """Cancel the messages among ``message_ids`` that no provider has yet (queued, deferred or
    retrying), recording ``reason`` (such as ``journey_exited``); returns the ids cancelled,
    in the order given. The others are left as they are."""
    _check_reason(reason)
    if not message_ids:
        return []
    stmt = (
        update(messages)
        .where(
            among(conn, messages.c.message_id, set(message_ids)),
            messages.c.status.in_(CANCELLABLE),
        )
        .values(
            status="cancelled", reason=reason, not_before=None, sending_since=None, updated_at=now
        )
        .returning(messages.c.message_id)
    )
    cancelled = set(conn.execute(stmt).scalars())
    return [message_id for message_id in dict.fromkeys(message_ids) if message_id in cancelled]


def _check_reason(reason: str) -> None:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > _REASON_LENGTH:
        raise ValueError(
            f"cancel_messages: reason must be a non-empty text of at most {_REASON_LENGTH} "
            f"characters, such as 'journey_exited'; got {reason!r}"
        )
