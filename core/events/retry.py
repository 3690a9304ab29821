"""Retrying handler failures: in event order per member and handler, each effect exactly once.

The scheduled job retries the failures that are due (backoff: ``core.events.failures``);
``events retry`` retries some or all of them at once. Each (member, handler) queue is retried in
its own transaction, oldest event first, and stops at the first event that fails again: the
later ones keep waiting behind it. A retry that succeeds marks the failure resolved; what the
handler wrote commits with it, under the same idempotency keys as a first attempt would use.
On PostgreSQL a queue another retrier holds is skipped (``FOR UPDATE SKIP LOCKED``), so any
number of workers can run the job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from core.db import in_values
from core.events.failures import OPEN, backoff, describe_error, run_handler
from core.events.handlers import HandlerContext, HandlerRegistry, handlers
from core.events.internal import internal_event
from core.events.tables import events, handler_failures
from core.events.types import INTERNAL_EVENT_TYPES, Event
from core.events.validation import validate_event

# Queues examined per call of the scheduled job; the next firing takes the rest.
MAX_QUEUES_PER_RUN = 5_000


@dataclass
class RetryReport:
    """What a retry run did: failures resolved, failed again, and left waiting."""

    resolved: int = 0
    failed: int = 0
    waiting: int = 0
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # event, handler, error

    def as_dict(self) -> dict[str, int]:
        return {"resolved": self.resolved, "failed": self.failed, "waiting": self.waiting}


@dataclass(frozen=True)
class _Failure:
    id: int
    event_id: str
    handler: str
    member_id: str
    occurred_at: datetime
    attempts: int
    next_attempt_at: datetime


def retry_failures(
    engine: Engine,
    *,
    program: Any,
    now: datetime,
    event_ids: Sequence[str] | None = None,
    due_only: bool = False,
    registry: HandlerRegistry = handlers,
) -> RetryReport:
    """Retry open failures (those of ``event_ids``, else all; ``due_only``: those whose backoff
    has passed). An event's earlier open failures in the same queue are retried before it."""
    report = RetryReport()
    for key in _queues(engine, event_ids, due_only=due_only, now=now):
        with engine.begin() as conn:
            ctx = HandlerContext(conn=conn, now=now, program=program)
            _retry_queue(ctx, key, event_ids, registry, report)
        ctx.run_after_commit()
    return report


def _queues(
    engine: Engine, event_ids: Sequence[str] | None, *, due_only: bool, now: datetime
) -> list[tuple[str, str]]:
    """The (member, handler) queues to retry, oldest head first."""
    query = select(
        handler_failures.c.member_id,
        handler_failures.c.handler,
        handler_failures.c.occurred_at,
        handler_failures.c.next_attempt_at,
    ).where(handler_failures.c.status.in_(OPEN))
    with engine.connect() as conn:
        if event_ids is not None:
            query = query.where(in_values(conn, handler_failures.c.event_id, list(event_ids)))
        rows = conn.execute(query.order_by(handler_failures.c.occurred_at)).all()
    heads: dict[tuple[str, str], datetime] = {}
    for member_id, handler, _, next_at in rows:
        heads.setdefault((member_id, handler), next_at)
    keys = [key for key, next_at in heads.items() if not due_only or next_at <= now]
    return keys[:MAX_QUEUES_PER_RUN]


def _retry_queue(
    ctx: HandlerContext,
    key: tuple[str, str],
    event_ids: Sequence[str] | None,
    registry: HandlerRegistry,
    report: RetryReport,
) -> None:
    queue = _lock_queue(ctx.conn, key, event_ids)
    loaded = load_events(ctx.conn, [f.event_id for f in queue])
    handler = registry.named(key[1])
    for position, failure in enumerate(queue):
        event = loaded.get(failure.event_id)
        error = _attempt(ctx, handler, key[1], event)
        if error is None:
            _mark(ctx.conn, failure, status="resolved", now=ctx.now)
            report.resolved += 1
            continue
        _mark(ctx.conn, failure, status="failed", now=ctx.now, error=error)
        report.failed += 1
        report.waiting += len(queue) - position - 1
        report.errors.append((failure.event_id, key[1], error))
        return


def _attempt(ctx: HandlerContext, handler: Any, name: str, event: Event | None) -> str | None:
    """None when the handler ran through; otherwise what went wrong."""
    if handler is None:
        return f"no handler named {name} is subscribed any more; was it renamed?"
    if event is None:
        return "the event is no longer in the event store"
    try:
        run_handler(ctx, handler, [event])
    except Exception as exc:
        return describe_error(exc)
    return None


def _lock_queue(
    conn: Connection, key: tuple[str, str], event_ids: Sequence[str] | None
) -> list[_Failure]:
    """The queue's open failures, oldest first, up to the last one asked for."""
    member_id, handler = key
    query = (
        select(handler_failures)
        .where(
            handler_failures.c.member_id == member_id,
            handler_failures.c.handler == handler,
            handler_failures.c.status.in_(OPEN),
        )
        .order_by(handler_failures.c.occurred_at, handler_failures.c.event_id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = [_as_failure(row) for row in conn.execute(query)]
    if event_ids is None:
        return rows
    wanted = set(event_ids)
    last = max((i for i, f in enumerate(rows) if f.event_id in wanted), default=-1)
    return rows[: last + 1]


def _as_failure(row: Any) -> _Failure:
    return _Failure(
        row.id,
        row.event_id,
        row.handler,
        row.member_id,
        row.occurred_at,
        row.attempts,
        row.next_attempt_at,
    )


def _mark(
    conn: Connection, failure: _Failure, *, status: str, now: datetime, error: str | None = None
) -> None:
    attempts = failure.attempts + 1
    values: dict[str, Any] = {"status": status, "attempts": attempts, "last_attempt_at": now}
    if status == "resolved":
        values["resolved_at"] = now
    else:
        values.update(error=error, next_attempt_at=now + backoff(attempts))
    conn.execute(
        update(handler_failures).where(handler_failures.c.id == failure.id).values(**values)
    )


def load_events(conn: Connection, event_ids: Sequence[str]) -> dict[str, Event]:
    """Stored events rebuilt as :class:`Event` (validated again, with no clock bound)."""
    if not event_ids:
        return {}
    query = select(events).where(in_values(conn, events.c.id, list(event_ids)))
    return {row.id: _rebuild(row) for row in conn.execute(query)}


def _rebuild(row: Any) -> Event:
    if row.type in INTERNAL_EVENT_TYPES:
        return internal_event(
            event_id=row.id,
            type=row.type,
            member_id=row.member_id,
            occurred_at=row.occurred_at,
            data=dict(row.data),
        )
    payload = {
        "id": row.id,
        "type": row.type,
        "occurred_at": row.occurred_at,
        "member_id": row.member_id,
        "data": row.data,
    }
    return validate_event(payload)


__all__ = ["RetryReport", "load_events", "retry_failures"]
