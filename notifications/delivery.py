"""Steps 2 and 3 of a send (see :mod:`notifications.dispatch`): hand claimed messages to
their transports, then record each outcome, retry schedule and suppression."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from core.privacy import mask_address
from notifications.dispatcher import Dispatcher
from notifications.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from notifications.guardrails import Recipient
from notifications.privacy import address_hash, scrub
from notifications.store import add_suppressions, insert_attempts, update_messages
from notifications.tokens import load_secret, make_token
from notifications.transports.base import OutgoingMessage, Receipt

log = logging.getLogger(__name__)
Result = Receipt | DeliveryError


@dataclass(frozen=True, eq=False)
class Claimed:
    """A message this worker now owns (status ``sending``), with its recipient."""

    row: RowMapping
    recipient: Recipient
    attempt: int
    recovered: bool = False  # found stuck in `sending` (a dead worker's) and sent again


@dataclass
class BatchReport:
    """What happened to each message of a batch; ``later`` is when to look at it again."""

    outcomes: dict[str, str] = field(default_factory=dict)
    later: dict[str, datetime] = field(default_factory=dict)

    def note(self, message_id: str, status: str, when: datetime | None = None) -> None:
        self.outcomes[message_id] = status
        if when is not None:
            self.later[message_id] = when


def unsubscribe_secret(
    conn: Connection, claimed: Sequence[Claimed], dispatcher: Dispatcher
) -> bytes | None:
    """The key of the unsubscribe links emails carry in their headers (None: no email)."""
    if not any(item.row["channel"] == "email" for item in claimed):
        return None
    return load_secret(conn, _configured_secret(dispatcher))


def deliver(
    claimed: Sequence[Claimed], *, now: datetime, dispatcher: Dispatcher, secret: bytes | None
) -> dict[str, Result]:
    """Send each claimed message through its channel's transport; never raises."""
    by_channel: dict[str, list[OutgoingMessage]] = defaultdict(list)
    for item in claimed:
        by_channel[item.row["channel"]].append(outgoing(item, now, dispatcher, secret))
    results: dict[str, Result] = {}
    for channel, batch in by_channel.items():
        transport = dispatcher.transport(channel)
        try:
            answers: list[Result] = transport.send_many(batch)
        except Exception as exc:  # a bug in a transport must not strand messages in `sending`
            log.exception("transport %s failed unexpectedly", transport.name)
            failure = TransientDeliveryError(f"unexpected {type(exc).__name__}: {exc}")
            answers = [failure for _ in batch]
        results.update({m.message_id: r for m, r in zip(batch, answers, strict=True)})
    return results


def _configured_secret(dispatcher: Dispatcher) -> str | None:
    secret = dispatcher.options.unsubscribe_secret
    return secret.get_secret_value() if secret else None


def unsubscribe_url(
    dispatcher: Dispatcher, secret: bytes, *, member_id: str, channel: str, message_id: str
) -> str:
    token = make_token(secret, member_id=member_id, channel=channel, message_id=message_id)
    return dispatcher.options.unsubscribe_url.format(token=token)


def outgoing(
    item: Claimed, now: datetime, dispatcher: Dispatcher, secret: bytes | None
) -> OutgoingMessage:
    """The message as its provider gets it: the member's current address, the unsubscribe
    link for the email headers."""
    row, channel = item.row, item.row["channel"]
    link = None
    if channel == "email" and secret is not None:
        link = unsubscribe_url(dispatcher, secret, member_id=row["member_id"], channel=channel,
                               message_id=row["message_id"])  # fmt: skip
    return OutgoingMessage(
        message_id=row["message_id"], channel=channel,
        to=item.recipient.address(channel) or "", member_id=row["member_id"],
        template=row["template_id"], locale=row["locale"], body=row["body"] or "",
        sent_at=now, campaign_id=row["campaign_id"], subject=row["subject"],
        title=row["title"], html=row["html"], sender=dispatcher.email_sender or None,
        unsubscribe_url=link, unsubscribe_mailto=dispatcher.options.unsubscribe_mailto,
    )  # fmt: skip


def record_outcomes(
    conn: Connection,
    claimed: Sequence[Claimed],
    results: dict[str, Result],
    *,
    now: datetime,
    dispatcher: Dispatcher,
    report: BatchReport,
) -> None:
    """Write what each provider said: the message's new state and one attempt row each."""
    changes, attempt_rows, suppressed = [], [], []
    for item in claimed:
        message_id = item.row["message_id"]
        result = results[message_id]
        change = _outcome(item, result, now=now, dispatcher=dispatcher)
        changes.append(change)
        attempt_rows.append(_attempt_row(item, result, change, now=now))
        if isinstance(result, PermanentDeliveryError) and result.suppress:
            suppressed.append(_suppression(item, change, now=now))
        report.note(message_id, change["status"], change["not_before"])
    sent = [change for change in changes if change["status"] == "sent"]
    update_messages(conn, sent, shared=_SHARED_WHEN_SENT)
    update_messages(conn, [change for change in changes if change["status"] != "sent"])
    insert_attempts(conn, attempt_rows)
    add_suppressions(conn, suppressed)


# What every sent message of a batch has in common (the bulk of a batch, written once).
_SHARED_WHEN_SENT = (
    "status", "reason", "error", "sent_at", "not_before", "sending_since", "updated_at",
)  # fmt: skip


def _outcome(
    item: Claimed, result: Result, *, now: datetime, dispatcher: Dispatcher
) -> dict[str, Any]:
    """The message's columns after this provider call."""
    channel = item.row["channel"]
    address = item.recipient.address(channel) or ""
    change: dict[str, Any] = {
        "message_id": item.row["message_id"], "status": "sent", "reason": None,
        "attempts": item.attempt, "provider": dispatcher.transport(channel).name,
        "provider_message_id": None, "error": None, "sent_at": None, "not_before": None,
        "sending_since": None, "to_masked": mask_address(channel, address),
        "address_hash": address_hash(channel, address), "updated_at": now,
    }  # fmt: skip
    if isinstance(result, Receipt):
        change.update(
            provider=result.provider, sent_at=now, provider_message_id=result.provider_message_id
        )
        return change
    change["provider"] = result.provider or change["provider"]
    change["error"] = scrub(str(result))[:2000]
    return change | _after_failure(item, result, now=now, dispatcher=dispatcher)


def _after_failure(
    item: Claimed, error: DeliveryError, *, now: datetime, dispatcher: Dispatcher
) -> dict[str, Any]:
    """Permanent: failed. Transient: retrying after a backoff, or dead after the last try."""
    if isinstance(error, PermanentDeliveryError):
        return {"status": "failed", "reason": "invalid_address" if error.suppress else "rejected"}
    if item.attempt >= dispatcher.options.max_attempts:
        return {"status": "dead", "reason": "retries_exhausted"}
    retry_after = error.retry_after if isinstance(error, TransientDeliveryError) else None
    later = now + dispatcher.backoff(item.attempt, retry_after)
    return {"status": "retrying", "reason": "transient_error", "not_before": later}


def _attempt_row(
    item: Claimed, result: Result, change: dict[str, Any], *, now: datetime
) -> dict[str, Any]:
    outcome = (
        "sent"
        if isinstance(result, Receipt)
        else ("permanent" if isinstance(result, PermanentDeliveryError) else "transient")
    )
    return {
        "message_id": item.row["message_id"],
        "attempt": item.attempt,
        "provider": change["provider"],
        "started_at": now,
        "outcome": outcome,
        "provider_message_id": change["provider_message_id"],
        "error": change["error"],
    }


def _suppression(item: Claimed, change: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    return {
        "channel": item.row["channel"],
        "address_hash": change["address_hash"],
        "to_masked": change["to_masked"],
        "reason": "invalid_address",
        "message_id": item.row["message_id"],
        "created_at": now,
    }
