"""The recovery policy for a send interrupted where the provider takes no idempotency key.

A message found ``sending`` after its lease ran out lost its worker between the provider call
and the record of it. Through an SMTP relay we cannot know whether the relay took it, and
sending again could deliver it twice, so it is not sent again: it becomes ``unknown`` with
reason ``interrupted`` ("sent?"), and an attempt row says so. A delivery callback later
resolves it to ``sent``; ``notifications replay --message ID`` sends it again on an operator's
word. (Idempotent transports are simply called again: see :mod:`notifications.dispatch`.)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from notifications.delivery import BatchReport
from notifications.dispatcher import Dispatcher
from notifications.store import insert_attempts, update_messages

log = logging.getLogger(__name__)


def mark_unknown(
    conn: Connection,
    rows: Sequence[RowMapping],
    *,
    now: datetime,
    dispatcher: Dispatcher,
    report: BatchReport,
) -> None:
    """Record each interrupted send as ``unknown``; nothing is sent."""
    changes, attempts = [], []
    for row in rows:
        provider = dispatcher.transport(row["channel"]).name
        error = (
            f"the worker stopped after handing the message to {provider}; it may or may not "
            "have been delivered, so it is not sent again (notifications replay sends it)"
        )
        changes.append(_unknown(row, provider, error, now))
        attempts.append(_interrupted_attempt(row, provider, error, now))
        report.note(row["message_id"], "unknown")
        log.warning("message %s interrupted while sending; marked unknown", row["message_id"])
    update_messages(conn, changes)
    insert_attempts(conn, attempts)


def _unknown(row: RowMapping, provider: str, error: str, now: datetime) -> dict[str, Any]:
    return {
        "message_id": row["message_id"],
        "status": "unknown",
        "reason": "interrupted",
        "provider": provider,
        "error": error,
        "sending_since": None,
        "updated_at": now,
    }


def _interrupted_attempt(
    row: RowMapping, provider: str, error: str, now: datetime
) -> dict[str, Any]:
    return {
        "message_id": row["message_id"],
        "attempt": row["attempts"],
        "provider": provider,
        "started_at": now,
        "outcome": "unknown",
        "provider_message_id": None,
        "error": error,
    }
