"""One code path for every way events come in: a file, the dramatiq actor, a Python call.

Each batch is one transaction. Rejected lines go to the dead-letter store with their reason (a
bad line never stops the file: undecodable bytes, deep JSON and oversized lines are rejected
like any invalid event). Events whose id is already stored count as duplicates and change
nothing (the primary key decides, not a prior read). The rest are stored, projected and handed
to subscribed handlers; a handler that fails never takes its valid event with it: the event
stays stored and projected, and the failure is kept for retry (``core.events.failures``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from core.db import bulk_insert, in_values
from core.events.errors import EventRejected
from core.events.failures import dispatch_isolated
from core.events.handlers import HandlerContext, HandlerRegistry, handlers
from core.events.projections import apply_projections
from core.events.refund_checks import fetch_refund_facts, judge_refunds, remove_quarantined
from core.events.store import store_new_events
from core.events.tables import orders, rejected_events
from core.events.types import Event, OrderPaid
from core.events.validation import decode_line, parse_line, validate_event

log = logging.getLogger(__name__)

# 1,000 rows per batch: measured best in the ingest benchmark (500 and 5,000 were slower on PG).
DEFAULT_BATCH_SIZE = 1_000


@dataclass(frozen=True)
class Rejection:
    """An input that was not accepted, as stored in the dead-letter store."""

    line: int | None
    raw: str
    reason: str
    event_id: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "input"
        return f"{where}{f' ({self.event_id})' if self.event_id else ''}: {self.reason}"


@dataclass
class IngestReport:
    """What happened to the input: counts plus each rejection."""

    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    # Facts counted by handlers and intake: handler_failed, coupon_refused, …
    tallies: Counter[str] = field(default_factory=Counter)

    def add(self, other: IngestReport) -> None:
        self.accepted += other.accepted
        self.duplicate += other.duplicate
        self.rejected += other.rejected
        self.rejections.extend(other.rejections)
        self.tallies.update(other.tallies)

    def tally(self, name: str) -> int:
        return self.tallies.get(name, 0)

    def as_dict(self) -> dict[str, int]:
        return {"accepted": self.accepted, "duplicate": self.duplicate, "rejected": self.rejected}


@dataclass(frozen=True)
class _Input:
    line: int | None
    raw: str
    payload: dict[str, Any] | None = None
    problem: str | None = None  # already known to be unreadable (bad bytes, too long)


@dataclass(frozen=True)
class Intake:
    """Where and how a stream of input is ingested."""

    engine: Engine
    now: datetime
    source: str = "api"
    program: Any | None = None
    registry: HandlerRegistry = handlers
    batch_size: int = DEFAULT_BATCH_SIZE
    # None: no bound. Every way in (CLI, actor, replay) builds its intake with
    # ``Intake.for_runtime``, which takes the bound and sizes from the settings.
    future_tolerance: timedelta | None = None
    # A fixed bound instead of now + tolerance (a replay moves ``now`` to each event's time).
    not_after: datetime | None = None
    max_line_bytes: int = 256 * 1024

    @classmethod
    def for_runtime(cls, runtime: Any, *, source: str, program: Any, **changes: Any) -> Intake:
        """The intake an engine process uses: its database, clock, program and settings."""
        settings = runtime.settings
        values: dict[str, Any] = {
            "engine": runtime.engine,
            "now": runtime.now(),
            "source": source,
            "program": program,
            "batch_size": settings.ingest_batch_size,
            "future_tolerance": settings.event_future_tolerance,
            "max_line_bytes": settings.max_line_bytes,
        }
        return cls(**{**values, **changes})

    @property
    def currency(self) -> str | None:
        return self.program.program_file.program.currency if self.program else None

    @property
    def latest(self) -> datetime | None:
        """The latest ``occurred_at`` accepted: the engine clock plus the tolerance."""
        if self.not_after is not None:
            return self.not_after
        return None if self.future_tolerance is None else self.now + self.future_tolerance


def ingest_lines(
    lines: Iterable[str | bytes],
    intake: Intake,
    *,
    progress: Callable[[int], None] | None = None,
    first_line: int = 1,
) -> IngestReport:
    """Ingest JSON lines, as text or bytes (blank lines are skipped); ``progress`` is told
    how many were done."""
    inputs = (
        item
        for number, text in enumerate(lines, start=first_line)
        if (item := _read_line(number, text, intake.max_line_bytes)) is not None
    )
    return _ingest_inputs(inputs, intake, progress)


def _read_line(number: int, text: str | bytes, limit: int) -> _Input | None:
    size = len(text)
    if size > limit:
        shown = _clip(text)
        return _Input(number, shown, problem=f"line is {size:,} bytes, over the {limit:,} limit")
    if isinstance(text, bytes):
        try:
            text = decode_line(text)
        except EventRejected as exc:
            return _Input(number, _clip(text), problem=exc.reason)
    stripped = text.strip()
    return _Input(line=number, raw=stripped) if stripped else None


def _clip(text: str | bytes, keep: int = 2_000) -> str:
    if isinstance(text, bytes):
        text = text[:keep].decode("utf-8", errors="backslashreplace")
    return text if len(text) <= keep else text[:keep] + f"… ({len(text):,} characters)"


def ingest(payloads: Iterable[dict[str, Any]], intake: Intake) -> IngestReport:
    """Ingest already-decoded events (the actor and Python callers use this)."""
    inputs = (_Input(line=None, raw=json.dumps(p, default=str), payload=p) for p in payloads)
    return _ingest_inputs(inputs, intake, None)


def _ingest_inputs(
    inputs: Iterator[_Input], intake: Intake, progress: Callable[[int], None] | None
) -> IngestReport:
    report = IngestReport()
    while batch := list(islice(inputs, intake.batch_size)):
        report.add(_ingest_batch(batch, intake))
        if progress:
            progress(len(batch))
    return report


def _ingest_batch(batch: Sequence[_Input], intake: Intake) -> IngestReport:
    valid, rejections = _validate_all(batch, intake)
    try:
        return _store(valid, rejections, intake)
    except SQLAlchemyError:
        # Storing or projecting failed (a handler's failure never gets here): find the
        # events that cannot be stored, one at a time, and keep them as dead letters.
        log.warning("a batch could not be stored; storing it one event at a time")
    report = _store([], rejections, intake)
    for item in valid:
        try:
            report.add(_store([item], [], intake))
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            reason = f"could not be stored: {type(cause).__name__}: {cause}".replace("\n", " ")
            bad = Rejection(item[0].line, item[0].raw, reason, item[1].id)
            report.add(_store([], [bad], intake))
    return report


def _validate_all(
    batch: Sequence[_Input], intake: Intake
) -> tuple[list[tuple[_Input, Event]], list[Rejection]]:
    valid: list[tuple[_Input, Event]] = []
    rejections: list[Rejection] = []
    currency, latest = intake.currency, intake.latest
    for item in batch:
        try:
            if item.problem:
                raise EventRejected(item.problem)
            payload = item.payload if item.payload is not None else parse_line(item.raw)
            valid.append((item, validate_event(payload, currency=currency, latest=latest)))
        except EventRejected as exc:
            rejections.append(Rejection(item.line, item.raw, exc.reason, exc.event_id))
    return valid, rejections


def _store(
    valid: Sequence[tuple[_Input, Event]], rejections: list[Rejection], intake: Intake
) -> IngestReport:
    report = IngestReport()
    with intake.engine.begin() as conn:
        plan_for_parameters(conn)
        fresh, duplicates = _split_duplicates(valid)
        fresh, conflicts, paid_before = _split_order_conflicts(conn, fresh)
        fresh, refund_problems = _check_refunds(conn, fresh, paid_before)
        rejections = rejections + conflicts + refund_problems
        accepted = _insert_events(conn, [event for _, event in fresh], intake)
        report.duplicate = duplicates + len(fresh) - len(accepted)
        ctx = HandlerContext(conn=conn, now=intake.now, program=intake.program)
        _apply(ctx, accepted, intake.registry)
        _insert_rejections(conn, rejections, intake)
    ctx.run_after_commit()
    report.accepted = len(accepted)
    report.rejected = len(rejections)
    report.rejections = rejections
    report.tallies.update({name: n for name, n in ctx.tallies.items() if n})
    return report


def plan_for_parameters(conn: Connection) -> None:
    """On PostgreSQL, plan each statement of this transaction for its parameters.

    psycopg prepares a statement once it has run 5 times, and PostgreSQL may then switch to a
    generic plan, in which ``member_id = ANY($1)`` is rechecked by scanning the whole array for
    each row (a constant array is hashed) and row counts are guessed: on the HTTP benchmark's
    shop after 30,000 orders, reading the balances of a batch's 400 members took 110 ms of
    server time instead of 6, and PostgreSQL CPU per event was 3.4x. Planning costs well under
    a millisecond a statement here.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")


def _check_refunds(
    conn: Connection, fresh: list[tuple[_Input, Event]], paid_before: set[str]
) -> tuple[list[tuple[_Input, Event]], list[Rejection]]:
    """Refunds must match their order's member and total (see core.events.refund_checks);
    ``paid_before``: the batch's orders that were already stored (redeliveries)."""
    facts = fetch_refund_facts(conn, [event for _, event in fresh], paid_before=paid_before)
    if facts is None:
        return fresh, []
    verdict = judge_refunds([event for _, event in fresh], facts)
    rejections = [
        Rejection(item.line, item.raw, verdict.rejected[event.id], event.id)
        for item, event in fresh
        if event.id in verdict.rejected
    ]
    remove_quarantined(conn, [refund for refund, _ in verdict.quarantined])
    rejections += [
        Rejection(None, json.dumps(refund.envelope(), default=str), reason, refund.event_id)
        for refund, reason in verdict.quarantined
    ]
    return [(i, e) for i, e in fresh if e.id not in verdict.rejected], rejections


def _split_duplicates(
    valid: Sequence[tuple[_Input, Event]],
) -> tuple[list[tuple[_Input, Event]], int]:
    seen: set[str] = set()
    fresh = []
    for item, event in valid:
        if event.id not in seen:
            seen.add(event.id)
            fresh.append((item, event))
    return fresh, len(valid) - len(fresh)


def _split_order_conflicts(
    conn: Connection, fresh: list[tuple[_Input, Event]]
) -> tuple[list[tuple[_Input, Event]], list[Rejection], set[str]]:
    """An order paid twice under different event ids is bad input, not a second purchase.
    Also returns the batch's order ids that were already stored."""
    paid = [(i, e) for i, e in fresh if isinstance(e.data, OrderPaid)]
    if not paid:
        return fresh, [], set()
    wanted = [e.data.order_id for _, e in paid]  # type: ignore[attr-defined]
    stored = dict(
        conn.execute(
            select(orders.c.order_id, orders.c.event_id).where(
                in_values(conn, orders.c.order_id, wanted)
            )
        ).all()
    )
    paid_before = set(stored)
    keep, conflicts = [], []
    for item, event in fresh:
        order_id = getattr(event.data, "order_id", None) if event.type == "order.paid" else None
        owner = stored.get(order_id) if order_id else None
        if order_id and owner is not None and owner != event.id:
            reason = f"data.order_id: order {order_id} was already paid by event {owner}"
            conflicts.append(Rejection(item.line, item.raw, reason, event.id))
            continue
        if order_id:
            stored.setdefault(order_id, event.id)
        keep.append((item, event))
    return keep, conflicts, paid_before


def _insert_events(conn: Connection, batch: Sequence[Event], intake: Intake) -> list[Event]:
    return store_new_events(conn, batch, source=intake.source, received_at=intake.now)


def _apply(ctx: HandlerContext, accepted: Sequence[Event], registry: HandlerRegistry) -> None:
    if not accepted:
        return
    ordered = sorted(accepted, key=lambda e: e.occurred_at)
    apply_projections(ctx.conn, ordered, now=ctx.now)
    dispatch_isolated(ctx, ordered, registry)


def _storable(text: str | None, limit: int | None = None) -> str | None:
    """Text any database column takes: NUL and lone surrogates written as escapes (a dead
    letter keeps what was sent, readably, rather than failing to store it)."""
    if text is None:
        return None
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text if limit is None else text[:limit]


def _insert_rejections(conn: Connection, rejections: Sequence[Rejection], intake: Intake) -> None:
    if not rejections:
        return
    rows = [
        {
            "event_id": _storable(r.event_id, 200),
            "source": _storable(intake.source, 200),
            "line": r.line,
            "reason": _storable(r.reason),
            "raw": _storable(r.raw),
            "rejected_at": intake.now,
        }
        for r in rejections
    ]
    bulk_insert(conn, rejected_events, rows)
