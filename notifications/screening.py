"""The guardrails applied to a batch of due messages, inside the sending transaction.

Pure decisions come from :mod:`notifications.guardrails`; this module fetches what they need
for a whole batch at once (recipients, the suppression list), writes the messages they stop
(suppressed, deferred) and counts frequency caps for the ones that go.

A marketing message over a full cap is treated by who sent it:

* sent by a **campaign** (``campaign_id`` set): suppressed with reason ``frequency_cap_day`` /
  ``frequency_cap_week``. The campaign's step is skipped, its reason recorded: a journey
  moves on, and a step sent days late would arrive out of its journey's order;
* otherwise (a marketing message requested outside any campaign): deferred to when the cap
  allows again (:func:`~notifications.guardrails.cap_deferral`).

Quiet hours always defer, campaign or not: the message goes in the member's morning.

A message counts against the caps once, before its first provider call: a retry does not
count again, nor does a replay (``notifications replay`` starts the attempts over, so the
test is whether any provider was ever named on the message).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, RowMapping, update

from notifications.delivery import BatchReport, Claimed
from notifications.dispatcher import Dispatcher
from notifications.guardrails import (
    SEND,
    Decision,
    Recipient,
    cap_deferral,
    cap_limits,
    cap_periods,
    decide,
    member_zone,
)
from notifications.privacy import address_hash
from notifications.store import fetch_suppressed, update_messages
from notifications.tables import messages


def decide_all(
    conn: Connection,
    rows: Sequence[RowMapping],
    recipients: dict[str, Recipient],
    recovered: set[str],
    *,
    now: datetime,
    dispatcher: Dispatcher,
) -> dict[str, Decision]:
    keys = {
        (row["channel"], address_hash(row["channel"], address))
        for row in rows
        if row["member_id"] in recipients
        and (address := recipients[row["member_id"]].address(row["channel"]))
    }
    suppressed = fetch_suppressed(conn, keys)
    decisions: dict[str, Decision] = {}
    for row in rows:
        recipient = recipients.get(row["member_id"])
        if row["message_id"] in recovered and recipient is not None:
            decisions[row["message_id"]] = SEND  # passed the guardrails when first claimed
            continue
        decisions[row["message_id"]] = _decide_one(row, recipient, suppressed, now, dispatcher)
    return decisions


def _decide_one(
    row: RowMapping,
    recipient: Recipient | None,
    suppressed: set[tuple[str, str]],
    now: datetime,
    dispatcher: Dispatcher,
) -> Decision:
    if recipient is None:
        return Decision("suppress", "unknown_member")
    channel = row["channel"]
    address = recipient.address(channel)
    listed = address is not None and (channel, address_hash(channel, address)) in suppressed
    return decide(
        recipient,
        channel=channel,
        kind=row["kind"],
        suppressed=listed,
        policy=dispatcher.policy,
        now=now,
    )


def write_stops(
    conn: Connection,
    rows: Sequence[RowMapping],
    decisions: dict[str, Decision],
    *,
    now: datetime,
    report: BatchReport,
) -> None:
    """Suppress or defer what the guardrails stopped."""
    changes = []
    for row in rows:
        decision = decisions[row["message_id"]]
        if decision.ok:
            continue
        status = "suppressed" if decision.outcome == "suppress" else "deferred"
        changes.append(
            {
                "message_id": row["message_id"],
                "status": status,
                "reason": decision.reason,
                "not_before": decision.until,
                "sending_since": None,
                "updated_at": now,
            }
        )
        report.note(row["message_id"], status, decision.until)
    update_messages(conn, changes)


def count_caps(
    conn: Connection,
    claimed: list[Claimed],
    *,
    now: datetime,
    dispatcher: Dispatcher,
    report: BatchReport,
) -> list[Claimed]:
    """Count the marketing messages about to go against the frequency caps; returns those
    that go. One over a full cap waits until the cap allows, or, when a campaign sent it, is
    suppressed (the campaign's step is skipped, see the module docstring)."""
    limits = cap_limits(dispatcher.policy)
    if not limits:
        return claimed
    kept: list[Claimed] = []
    for item in claimed:
        if not counts_against_caps(item):
            kept.append(item)
            continue
        zone = member_zone(item.recipient, dispatcher.policy)
        full = dispatcher.caps.reserve(
            conn, member_id=item.row["member_id"], periods=cap_periods(now, zone), limits=limits
        )
        if full is None:
            kept.append(item)
            continue
        reason = f"frequency_cap_{full}"
        if item.row["campaign_id"] is not None:
            _stop_for_cap(conn, item, status="suppressed", reason=reason, until=None, now=now)
            report.note(item.row["message_id"], "suppressed")
            continue
        until = cap_deferral(now, zone, full, dispatcher.policy)
        _stop_for_cap(conn, item, status="deferred", reason=reason, until=until, now=now)
        report.note(item.row["message_id"], "deferred", until)
    return kept


def counts_against_caps(item: Claimed) -> bool:
    """A marketing message counts once, before the first provider call it ever gets: not on a
    retry, and not after a replay (which starts its attempts over, but a provider was named)."""
    return item.row["kind"] == "marketing" and item.attempt == 1 and item.row["provider"] is None


def _stop_for_cap(
    conn: Connection,
    item: Claimed,
    *,
    status: str,
    reason: str,
    until: datetime | None,
    now: datetime,
) -> None:
    conn.execute(
        update(messages)
        .where(messages.c.message_id == item.row["message_id"])
        .values(
            status=status,
            reason=reason,
            not_before=until,
            attempts=item.attempt - 1,  # stopped by a cap: no provider was tried
            sending_since=None,
            updated_at=now,
        )
    )
