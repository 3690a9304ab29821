"""Handler failures: a valid event is never lost to a program or engine fault.

Intake stores and projects every valid event whatever its handlers do. Each handler then runs
on its share of the batch inside a SAVEPOINT; if it raises, the savepoint is rolled back and the
events are retried one at a time, so only the events that really fail are set aside. Each such
(event, handler) pair is kept in ``handler_failures`` with the error and the attempts made, and
is retried later (``core.events.retry``): with backoff by the scheduled job, at once by
``events retry``. Handlers keep each member's events in order: while a member has an open
failure in a handler, that member's later events for the handler wait behind it.

Events stored while no program is loaded (``events ingest --no-program``) are kept the same
way, as ``waiting`` for every handler subscribed to their type, and are handled once a program
is loaded. Effects are exactly-once on retry because every handler writes under idempotency
keys (ledger keys, redemption and message dedupe keys) and a failed attempt rolled back all it
wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from core.db import bulk_insert, in_values
from core.events.handlers import Handler, HandlerContext, HandlerRegistry, handler_name
from core.events.tables import handler_failures
from core.events.types import Event

log = logging.getLogger(__name__)

OPEN = ("failed", "waiting")
NO_PROGRAM = "no program loaded; handled once one is (events retry --all, or the retry job)"
# Retry backoff: 5 min, 10, 20, … capped at 6 h; a fixed program is picked up by the next
# attempt, or at once with `events retry --all`.
FIRST_DELAY = timedelta(minutes=5)
MAX_DELAY = timedelta(hours=6)
_ERROR_CHARS = 2_000


def backoff(attempts: int) -> timedelta:
    """The wait before the next attempt, after ``attempts`` failed ones."""
    return min(FIRST_DELAY * 2 ** max(0, min(attempts - 1, 16)), MAX_DELAY)


def describe_error(exc: BaseException) -> str:
    """One line naming the exception, clipped for storage."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


@dataclass(frozen=True)
class _Attempt:
    """What a failed attempt must undo besides the database: deferred actions and tallies."""

    deferred: int
    tallies: dict[str, int]


def run_handler(ctx: HandlerContext, handler: Handler, events: Sequence[Event]) -> None:
    """Run one handler on events inside a savepoint; on error, undo all it did and re-raise."""
    attempt = _Attempt(len(ctx._after_commit), dict(ctx.tallies))
    try:
        with ctx.conn.begin_nested():
            handler(ctx, events)
    except Exception:
        del ctx._after_commit[attempt.deferred :]
        ctx.tallies.clear()
        ctx.tallies.update(attempt.tallies)
        raise


def dispatch_isolated(
    ctx: HandlerContext, events: Sequence[Event], registry: HandlerRegistry
) -> int:
    """Hand events to their handlers so that no handler error escapes: failing events are
    recorded in ``handler_failures``; returns how many (event, handler) pairs were set aside."""
    plan = registry.plan(events)
    if not plan:
        return 0
    set_aside = 0
    if ctx.program is None:
        unready = [(h, batch) for h, batch in plan if registry.needs_program(h)]
        waiting = [
            (e, handler_name(h), NO_PROGRAM, "waiting") for h, batch in unready for e in batch
        ]
        set_aside += _record(ctx, waiting)
        plan = [(h, batch) for h, batch in plan if not registry.needs_program(h)]
    blocked = open_failures(ctx.conn, [e.member_id for _, batch in plan for e in batch])
    for handler, batch in plan:
        set_aside += _dispatch_one(ctx, handler, batch, blocked)
    return set_aside


def _dispatch_one(
    ctx: HandlerContext, handler: Handler, batch: list[Event], blocked: set[tuple[str, str]]
) -> int:
    name = handler_name(handler)
    waiting = [e for e in batch if (e.member_id, name) in blocked]
    ready = [e for e in batch if (e.member_id, name) not in blocked]
    failures: list[tuple[Event, str, str, str]] = [
        (e, name, f"waiting behind an earlier failed event of {e.member_id}", "waiting")
        for e in waiting
    ]
    if ready:
        try:
            run_handler(ctx, handler, ready)
        except Exception:
            log.warning("handler %s failed on a batch; retrying it one event at a time", name)
            failures += _one_at_a_time(ctx, handler, name, ready)
    return _record(ctx, failures)


def _one_at_a_time(
    ctx: HandlerContext, handler: Handler, name: str, events: list[Event]
) -> list[tuple[Event, str, str, str]]:
    failed_members: set[str] = set()
    failures: list[tuple[Event, str, str, str]] = []
    for event in sorted(events, key=lambda e: (e.occurred_at, e.id)):
        if event.member_id in failed_members:
            reason = f"waiting behind an earlier failed event of {event.member_id}"
            failures.append((event, name, reason, "waiting"))
            continue
        try:
            run_handler(ctx, handler, [event])
        except Exception as exc:
            log.warning("handler %s failed on event %s: %s", name, event.id, exc)
            failed_members.add(event.member_id)
            failures.append((event, name, describe_error(exc), "failed"))
    return failures


def open_failures(conn: Connection, member_ids: Sequence[str]) -> set[tuple[str, str]]:
    """(member, handler) pairs with an open failure: later events of theirs wait behind it."""
    ids = sorted(set(member_ids))
    if not ids:
        return set()
    query = select(handler_failures.c.member_id, handler_failures.c.handler).where(
        in_values(conn, handler_failures.c.member_id, ids),
        handler_failures.c.status.in_(OPEN),
    )
    return {(m, h) for m, h in conn.execute(query)}


def _record(ctx: HandlerContext, failures: Sequence[tuple[Event, str, str, str]]) -> int:
    rows = [_row(event, name, error, status, ctx.now) for event, name, error, status in failures]
    bulk_insert(ctx.conn, handler_failures, rows, conflict_keys=["event_id", "handler"])
    ctx.tally("handler_failed", sum(1 for f in failures if f[3] == "failed"))
    ctx.tally("handler_waiting", sum(1 for f in failures if f[3] == "waiting"))
    return len(rows)


def _row(event: Event, name: str, error: str, status: str, now: datetime) -> dict[str, Any]:
    failed = status == "failed"
    return {
        "event_id": event.id,
        "handler": name,
        "member_id": event.member_id,
        "event_type": event.type,
        "occurred_at": event.occurred_at,
        "status": status,
        "error": error,
        "attempts": 1 if failed else 0,
        "first_failed_at": now,
        "last_attempt_at": now if failed else None,
        "next_attempt_at": now + backoff(1) if failed else now,
        "resolved_at": None,
    }
