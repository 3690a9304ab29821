"""Sending recorded messages: guardrails, the claim, the provider call, the outcome.

States of a message (``notification_messages.status``)::

    queued ──► sending ──► sent
      │           ├──► retrying ──► sending … ──► dead ──(replay)──► queued   (transient)
      │           ├──► failed     (permanent: 400, invalid address; suppresses the address)
      │           └──► unknown    (interrupted; the provider takes no idempotency key)
      ├──► suppressed             (no consent, no address, suppression list; a campaign's
      │                            marketing message over a frequency cap)
      ├──► deferred ──► sending   (quiet hours, a frequency cap outside campaigns; when due)
      └──► cancelled              (final, never sent: see below)

``cancelled``: :func:`notifications.states.cancel_messages` (a journey exited) takes a message
that no provider has yet - ``queued``, ``deferred`` or ``retrying`` (its earlier tries failed)
- out of every send path: none of them (the batch's lock, the claim, the release job, replay)
selects a cancelled message. A message ``sending`` or already sent is left as it is. The row
lock of step 1 orders a cancel and a send on PostgreSQL: a cancel waiting for a batch's lock
finds the message sent (left alone) or deferred (cancelled).

A batch is sent like this:

1. **lock and screen** (one transaction): lock the batch's due messages (``SELECT … FOR UPDATE
   SKIP LOCKED`` on PostgreSQL: a message enqueued a hundred times, or raced for by several
   workers, is taken by one), run the guardrails, write suppressions and deferrals, count
   frequency caps for the marketing messages that go (a full cap defers the message, or
   suppresses a campaign's: :mod:`notifications.screening`);
2. for a **remote provider** (SMTP, HTTP) the messages are *claimed* - ``status = 'sending'``,
   one attempt more - and the transaction commits before the provider is called, so no
   provider call ever happens inside a database transaction; then the provider is called, and
   a second transaction records each outcome: sent, retrying (with backoff), dead, or failed,
   with one ``notification_attempts`` row per call;
3. for a **local, idempotent transport** (the outbox file) the hand-over and its record happen
   inside the first transaction: if the worker dies before the commit, the message is still
   ``queued`` and is written again, which the outbox, keyed by message id, ignores.

Crash recovery: a worker killed between the provider call and the commit of step 2 leaves a
message ``sending``. Once its lease (``sending_lease_s``) has passed, the next worker to meet it
(a redelivered actor message or the release job) sends it again **only where the transport is
idempotent** (HTTP providers get the message id as ``Idempotency-Key``), so the provider
de-duplicates; otherwise (SMTP) it is not sent again but marked ``unknown`` with reason
``interrupted`` - "sent?": the provider may or may not have taken it. A delivery callback later
resolves it; ``notifications replay --message ID`` sends it again on an operator's word.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    RowMapping,
    and_,
    func,
    or_,
    select,
    update,
)

from notifications.delivery import (
    BatchReport,
    Claimed,
    deliver,
    record_outcomes,
    unsubscribe_secret,
)
from notifications.dispatcher import Dispatcher
from notifications.recovery import mark_unknown
from notifications.screening import count_caps, decide_all, write_stops
from notifications.store import among, fetch_recipients
from notifications.tables import messages

log = logging.getLogger(__name__)
CLAIMABLE = ("queued", "deferred", "retrying")
QUEUED_GRACE = timedelta(minutes=2)  # a queued message this old lost its actor message


def send_messages(
    engine: Engine, message_ids: Collection[str], *, now: datetime, dispatcher: Dispatcher
) -> BatchReport:
    """Send every due message among ``message_ids``; others are left alone."""
    report = BatchReport()
    with engine.begin() as conn:
        going = screen(conn, message_ids, now=now, dispatcher=dispatcher, report=report)
        secret = unsubscribe_secret(conn, going, dispatcher)
        local, others = _split_local(going, dispatcher)
        remote = claim(conn, others, now=now, lease=_lease(dispatcher))
        _send_and_record(conn, local, now=now, dispatcher=dispatcher, secret=secret,
                         report=report)  # fmt: skip
    if remote:
        results = deliver(remote, now=now, dispatcher=dispatcher, secret=secret)
        with engine.begin() as conn:
            record_outcomes(conn, remote, results, now=now, dispatcher=dispatcher, report=report)
    return report


def _send_and_record(
    conn: Connection,
    items: list[Claimed],
    *,
    now: datetime,
    dispatcher: Dispatcher,
    secret: bytes | None,
    report: BatchReport,
) -> None:
    if items:
        results = deliver(items, now=now, dispatcher=dispatcher, secret=secret)
        record_outcomes(conn, items, results, now=now, dispatcher=dispatcher, report=report)


def screen(
    conn: Connection,
    message_ids: Collection[str],
    *,
    now: datetime,
    dispatcher: Dispatcher,
    report: BatchReport,
) -> list[Claimed]:
    """Lock the due messages and run the guardrails; returns the ones to send."""
    rows = lock_due(conn, message_ids, now=now, lease=_lease(dispatcher))
    stuck = [row for row in rows if row["status"] == "sending"]
    interrupted = [row for row in stuck if not dispatcher.transport(row["channel"]).idempotent]
    mark_unknown(conn, interrupted, now=now, dispatcher=dispatcher, report=report)
    recovered = {row["message_id"] for row in stuck} - {row["message_id"] for row in interrupted}
    rows = [row for row in rows if row["status"] != "sending" or row["message_id"] in recovered]
    recipients = fetch_recipients(conn, {row["member_id"] for row in rows})
    decisions = decide_all(conn, rows, recipients, recovered, now=now, dispatcher=dispatcher)
    write_stops(conn, rows, decisions, now=now, report=report)
    going = [
        Claimed(
            row, recipients[row["member_id"]], row["attempts"] + 1, row["message_id"] in recovered
        )
        for row in rows
        if decisions[row["message_id"]].ok
    ]
    return count_caps(conn, going, now=now, dispatcher=dispatcher, report=report)


def _split_local(
    items: list[Claimed], dispatcher: Dispatcher
) -> tuple[list[Claimed], list[Claimed]]:
    """(sent inside the transaction: local and idempotent transports, the others)."""
    local: list[Claimed] = []
    others: list[Claimed] = []
    for item in items:
        transport = dispatcher.transport(item.row["channel"])
        (local if transport.local and transport.idempotent else others).append(item)
    return local, others


def _lease(dispatcher: Dispatcher) -> timedelta:
    return timedelta(seconds=dispatcher.options.sending_lease_s)


# Wrapped in an expression so the planner finds a batch's rows by primary key: with stale
# statistics (a campaign just queued 100,000 messages) it would otherwise walk the status index
# over every queued message, for every batch.
_STATUS = func.coalesce(messages.c.status, "")


def due_condition(now: datetime, lease: timedelta) -> ColumnElement[bool]:
    """Due now, or stuck ``sending`` past its lease (its worker died)."""
    due = and_(
        _STATUS.in_(CLAIMABLE),
        or_(messages.c.not_before.is_(None), messages.c.not_before <= now),
    )
    stuck = and_(_STATUS == "sending", messages.c.sending_since <= now - lease)
    return or_(due, stuck)


def lock_due(
    conn: Connection, message_ids: Collection[str], *, now: datetime, lease: timedelta
) -> list[RowMapping]:
    """The due messages among ``message_ids``, locked for this transaction (on PostgreSQL
    rows another worker holds are skipped: that worker is sending them; SQLite locks the
    whole database)."""
    if not message_ids:
        return []
    batch = and_(among(conn, messages.c.message_id, message_ids), due_condition(now, lease))
    if conn.dialect.name == "sqlite":
        # No row locks: a write first takes the database's write lock, so nothing (a cancel,
        # another worker) changes the batch between this read and this transaction's writes.
        conn.execute(update(messages).where(batch).values(updated_at=messages.c.updated_at))
    stmt = (
        select(messages)
        .where(batch)
        .order_by(messages.c.message_id)
        .with_for_update(skip_locked=True)
    )
    return list(conn.execute(stmt).mappings())


def claim(
    conn: Connection, items: Sequence[Claimed], *, now: datetime, lease: timedelta
) -> list[Claimed]:
    """Mark messages ``sending`` (one attempt more) before their provider is called; returns
    those claimed. The rows are locked already on PostgreSQL; on SQLite, which has no row
    locks, the condition lets only one of two racing workers have each message."""
    if not items:
        return []
    stmt = (
        update(messages)
        .where(
            among(conn, messages.c.message_id, [item.row["message_id"] for item in items]),
            due_condition(now, lease),
        )
        .values(
            status="sending", attempts=messages.c.attempts + 1, sending_since=now, updated_at=now
        )
        .returning(messages.c.message_id)
    )
    claimed = set(conn.execute(stmt).scalars())
    return [item for item in items if item.row["message_id"] in claimed]
