"""Running journeys' due steps: effects keyed by journey and step, checked at execution time.

Due journeys are locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: two workers never run one at
once), re-read, and advanced through their steps in one transaction, each until a ``wait`` or the
end. Every effect carries the key ``journey:<journey id>:<step id>`` (message dedupe key, coupon
issue key, points idempotency key) and each step's row is written in the same transaction, so a
retry, a crash before the commit or a second worker neither repeats a step nor skips one. The
journey's state is checked right there, under the lock: a journey that exited (its member paid)
or whose campaign is paused runs nothing, however long ago its step was queued.

A batch runs in rounds: round *k* runs the *k*-th pending step of every journey, each kind of
effect at once (one insert of all coupons, one request for all messages), so a send sees the
coupon an earlier step of its journey issued. If the batch fails, each journey is run alone in a
savepoint; one that still fails keeps its place and is retried with a backoff.

Editing a campaign while journeys run (docs/campaigns.md): a journey continues at the step with
the id it stored (``id:``, or the step's label such as ``send:cart-coupon``); if the file has no
such step any more, the journey exits with reason ``step_removed``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from campaigns.assignment import steps_of, version_of
from campaigns.controls import paused_ids, write_first
from campaigns.definitions import Campaign, Step, step_ids
from campaigns.effects import Outcome, run_round
from campaigns.tables import journey_steps, journeys
from core.db import in_values, insert_ignoring_conflicts
from core.events.handlers import HandlerContext

log = logging.getLogger(__name__)
FIRST_BACKOFF = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=6)


@dataclass
class AdvanceReport:
    """What one run over due journeys did."""

    steps: int = 0
    completed: int = 0
    exited: int = 0
    held: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: AdvanceReport) -> None:
        for name in ("steps", "completed", "exited", "held", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors


@dataclass
class Run:
    """A journey being advanced: its row, its campaign's steps now, where it is."""

    row: Any
    campaign: Campaign
    steps: tuple[Step, ...]
    ids: list[str]
    position: int
    error: BaseException | None = None  # why its last attempt failed

    @property
    def step(self) -> Step:
        return self.steps[self.position]

    @property
    def step_id(self) -> str:
        return self.ids[self.position]


def advance_journeys(
    ctx: HandlerContext, journey_ids: Sequence[str], *, report: AdvanceReport | None = None
) -> AdvanceReport:
    """Run the due steps of the given journeys (those not due, ended or locked are left)."""
    report = report or AdvanceReport()
    rows = _lock_due(ctx.conn, journey_ids, now=ctx.now)
    if not rows:
        return report
    assert ctx.program is not None, "journeys run with a loaded program"
    paused = paused_ids(ctx.conn, ctx.program.campaigns)
    runs = [run for row in rows if (run := _prepare(ctx, row, paused, report)) is not None]
    if runs and not _attempt(ctx, runs, report):
        for run in runs:  # the batch failed: find the journey that fails, keep the others
            if not _attempt(ctx, [run], report):
                _record_failure(ctx.conn, run.row, run.error, now=ctx.now)
                report.failed += 1
    return report


def _attempt(ctx: HandlerContext, runs: list[Run], report: AdvanceReport) -> bool:
    attempt = AdvanceReport()
    start = [run.position for run in runs]
    savepoint = ctx.conn.begin_nested()
    try:
        _execute(ctx, runs, attempt)
        savepoint.commit()
    except Exception as exc:  # nothing this attempt wrote stays
        savepoint.rollback()
        for run, position in zip(runs, start, strict=True):
            run.position = position
            run.error = exc
        if len(runs) == 1:
            report.errors.append(f"{runs[0].row.journey_id}: {exc}")
            log.warning(
                "journey %s failed at %s: %s", runs[0].row.journey_id, runs[0].row.step_id, exc
            )
        return False
    report.add(attempt)
    return True


def _lock_due(conn: Connection, journey_ids: Sequence[str], *, now: datetime) -> list[Any]:
    if not journey_ids:
        return []
    write_first(conn)
    query = (
        select(journeys)
        .where(
            in_values(conn, journeys.c.journey_id, journey_ids),
            journeys.c.status == "active",
            journeys.c.next_run_at <= now,
        )
        .order_by(journeys.c.next_run_at, journeys.c.journey_id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(conn.execute(query))


def _prepare(ctx: HandlerContext, row: Any, paused: set[str], report: AdvanceReport) -> Run | None:
    """The run of a due journey, or None when it holds or ends without running a step."""
    campaign: Campaign | None = ctx.program.campaigns.get(row.campaign_id)  # type: ignore[union-attr]
    reason = None
    if campaign is None:
        reason = "campaign_removed"
    elif campaign.id in paused:
        report.held += 1
        return None
    steps = steps_of(campaign, row.arm) if campaign else None
    if campaign is not None and steps is None:
        reason = "variant_removed"
    ids = step_ids(steps) if steps else []
    if reason is None and row.step_id is not None and row.step_id not in ids:
        reason = "step_removed"
    if reason is not None:
        _end(ctx.conn, [row.journey_id], status="exited", reason=reason, now=ctx.now)
        report.exited += 1
        return None
    if row.step_id is None:  # its last step was a wait that has now passed
        _end(ctx.conn, [row.journey_id], status="completed", reason=None, now=ctx.now)
        report.completed += 1
        return None
    assert campaign is not None and steps is not None
    return Run(row, campaign, steps, ids, ids.index(row.step_id))


def _execute(ctx: HandlerContext, runs: list[Run], report: AdvanceReport) -> None:
    active = list(runs)
    while active:
        outcomes = run_round(ctx, active)
        _record(ctx.conn, [(run, outcomes[id(run)]) for run in active], ctx.now)
        report.steps += len(active)
        waiting = [run for run in active if run.step.wait is not None]
        done = [
            run for run in active if run.step.wait is None and run.position + 1 == len(run.steps)
        ]
        _move(ctx.conn, waiting, now=ctx.now)
        _recheck_after_commit(ctx, waiting)
        _complete(ctx.conn, done, now=ctx.now)
        report.completed += len(done)
        stopped = {id(run) for run in waiting + done}
        active = [run for run in active if id(run) not in stopped]
        for run in active:
            run.position += 1


def _record(conn: Connection, done: list[tuple[Run, Outcome]], now: datetime) -> None:
    rows = [
        {
            "journey_id": run.row.journey_id,
            "step_id": run.step_id,
            "kind": run.step.kind,
            "status": outcome.status,
            "reason": outcome.reason[:64] if outcome.reason else None,
            "member_id": outcome.member_id or run.row.member_id,
            "message_id": outcome.message_id,
            "coupon_code": outcome.coupon_code,
            "points": outcome.points,
            "executed_at": now,
        }
        for run, outcome in done
    ]
    if rows:
        conn.execute(
            insert_ignoring_conflicts(conn, journey_steps, ["journey_id", "step_id"]), rows
        )


_BY_ID = journeys.c.journey_id == bindparam("jid")


def _move(conn: Connection, runs: list[Run], *, now: datetime) -> None:
    """Journeys at a wait: due again when it ends, at the step after it (None: they end)."""
    if not runs:
        return
    statement = (
        update(journeys)
        .where(_BY_ID)
        .values(
            step_id=bindparam("next_step"),
            next_run_at=bindparam("due"),
            version=bindparam("running"),
            attempts=0,
            last_error=None,
            updated_at=now,
        )
    )
    conn.execute(
        statement,
        [
            {
                "jid": run.row.journey_id,
                "next_step": run.ids[run.position + 1] if run.position + 1 < len(run.ids) else None,
                "due": now + run.step.wait,  # type: ignore[operator]
                "running": version_of(run.campaign),
            }
            for run in runs
        ],
    )


def _recheck_after_commit(ctx: HandlerContext, runs: list[Run]) -> None:
    """A wait shorter than this transaction may end before it commits, after the due-steps
    job last looked: have those journeys run as soon as the commit makes their wait visible."""
    if not runs:
        return
    due = [(run.row.journey_id, ctx.now + run.step.wait) for run in runs]  # type: ignore[operator]

    def enqueue_the_due() -> None:
        from campaigns.jobs import enqueue_advance
        from core.clock import get_clock

        now = get_clock().now()
        ready = [journey_id for journey_id, at in due if at <= now]
        if ready:
            enqueue_advance(ready)

    ctx.after_commit(enqueue_the_due)


def _complete(conn: Connection, runs: list[Run], *, now: datetime) -> None:
    """Journeys past their last step, in one statement per campaign version."""
    by_version: dict[str, list[str]] = {}
    for run in runs:
        by_version.setdefault(version_of(run.campaign), []).append(run.row.journey_id)
    for version, journey_ids in by_version.items():
        conn.execute(
            update(journeys)
            .where(in_values(conn, journeys.c.journey_id, journey_ids))
            .values(
                status="completed",
                reason=None,
                step_id=None,
                next_run_at=None,
                ended_at=now,
                updated_at=now,
                version=version,
            )
        )


def _end(
    conn: Connection,
    journey_ids: list[str],
    *,
    status: str,
    reason: str | None,
    now: datetime,
    version: str | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "reason": reason, "step_id": None,
                              "next_run_at": None, "ended_at": now, "updated_at": now}  # fmt: skip
    if version is not None:
        values["version"] = version
    conn.execute(update(journeys).where(_BY_ID).values(**values), [{"jid": j} for j in journey_ids])


def _record_failure(
    conn: Connection, row: Any, exc: BaseException | None, *, now: datetime
) -> None:
    attempts = (row.attempts or 0) + 1
    wait = min(FIRST_BACKOFF * 2 ** (attempts - 1), MAX_BACKOFF)
    conn.execute(
        update(journeys)
        .where(journeys.c.journey_id == row.journey_id)
        .values(
            attempts=attempts, last_error=str(exc)[:2000], next_run_at=now + wait, updated_at=now
        )
    )
