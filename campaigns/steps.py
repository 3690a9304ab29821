"""Running a journey's due steps: effects keyed by journey and step, checked at execution time.

A due journey is locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: two workers never run it at
once), re-read, and advanced through its steps in one transaction until a ``wait`` or the end.
Every effect carries the key ``journey:<journey id>:<step id>`` (message dedupe key, coupon issue
key, points idempotency key) and each step's row is written in the same transaction, so a
retry, a crash before the commit or a second worker neither repeats a step nor skips one. The
journey's state is checked right there, under the lock: a journey that exited (its member paid)
or whose campaign is paused runs nothing, however long ago its step was queued.

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

from sqlalchemy import Connection, select, update

from campaigns.assignment import steps_of, version_of
from campaigns.context import message_variables
from campaigns.controls import paused_ids
from campaigns.definitions import Campaign, Step, step_ids
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


@dataclass(frozen=True)
class Outcome:
    """A step's record: done or skipped (with why), and what it produced."""

    status: str = "done"
    reason: str | None = None
    member_id: str = ""
    message_id: str | None = None
    coupon_code: str | None = None
    points: int | None = None


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
    for row in rows:
        savepoint = ctx.conn.begin_nested()
        try:
            _advance_one(ctx, row, paused, report)
            savepoint.commit()
        except Exception as exc:  # a step failed: nothing it wrote stays; retried later
            savepoint.rollback()
            _record_failure(ctx.conn, row, exc, now=ctx.now)
            report.failed += 1
            report.errors.append(f"{row.journey_id}: {exc}")
            log.warning("journey %s step %s failed: %s", row.journey_id, row.step_id, exc)
    return report


def _lock_due(conn: Connection, journey_ids: Sequence[str], *, now: datetime) -> list[Any]:
    if not journey_ids:
        return []
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


def _advance_one(ctx: HandlerContext, row: Any, paused: set[str], report: AdvanceReport) -> None:
    campaign: Campaign | None = ctx.program.campaigns.get(row.campaign_id)  # type: ignore[union-attr]
    if campaign is None:
        _end(ctx.conn, row, status="exited", reason="campaign_removed", now=ctx.now)
        report.exited += 1
        return
    if campaign.id in paused:
        report.held += 1
        return
    steps = steps_of(campaign, row.arm)
    if steps is None:
        _end(ctx.conn, row, status="exited", reason="variant_removed", now=ctx.now)
        report.exited += 1
        return
    ids = step_ids(steps)
    if row.step_id is None:
        _end(ctx.conn, row, status="completed", reason=None, now=ctx.now)
        report.completed += 1
        return
    if row.step_id not in ids:
        _end(ctx.conn, row, status="exited", reason="step_removed", now=ctx.now)
        report.exited += 1
        return
    _run_from(ctx, row, campaign, steps, ids, ids.index(row.step_id), report)


def _run_from(
    ctx: HandlerContext,
    row: Any,
    campaign: Campaign,
    steps: tuple[Step, ...],
    ids: list[str],
    index: int,
    report: AdvanceReport,
) -> None:
    version = version_of(campaign)
    for position in range(index, len(steps)):
        step, step_id = steps[position], ids[position]
        following = ids[position + 1] if position + 1 < len(ids) else None
        if step.wait is not None:
            _record(ctx.conn, row, step_id, "wait", Outcome(member_id=row.member_id), ctx.now)
            _move(ctx.conn, row, step_id=following, at=ctx.now + step.wait, version=version,
                  now=ctx.now)  # fmt: skip
            report.steps += 1
            return
        outcome = run_step(ctx, row, campaign, step, step_id)
        _record(ctx.conn, row, step_id, step.kind, outcome, ctx.now)
        report.steps += 1
    _end(ctx.conn, row, status="completed", reason=None, now=ctx.now, version=version)
    report.completed += 1


def effect_key(journey_id: str, step_id: str) -> str:
    return f"journey:{journey_id}:{step_id}"


def recipient_of(row: Any, step: Step) -> str:
    """The journey's member, or the referrer or referee a referral step names."""
    who = getattr(getattr(step, step.kind), "member", None)
    if who is None:
        return str(row.member_id)
    referral = (row.context or {}).get("referral") or {}
    return str(referral.get(f"{who}_id") or row.member_id)


def run_step(
    ctx: HandlerContext, row: Any, campaign: Campaign, step: Step, step_id: str
) -> Outcome:
    """The effect of one send, issue_coupon or award_points step."""
    member_id = recipient_of(row, step)
    key = effect_key(row.journey_id, step_id)
    if step.issue_coupon is not None:
        return _issue(ctx, member_id, step.issue_coupon.coupon, key)
    if step.award_points is not None:
        return _award(ctx, member_id, step.award_points, key)
    assert step.send is not None
    return _send(ctx, row, campaign, member_id, step.send, key)


def _issue(ctx: HandlerContext, member_id: str, coupon_id: str, key: str) -> Outcome:
    from coupons.errors import CouponNotIssuable, UnknownMember
    from coupons.wallet import issue_coupon

    try:
        coupon = issue_coupon(
            ctx.conn, ctx.program, coupon_id=coupon_id, member_id=member_id, now=ctx.now,
            issue_key=key,
        )  # fmt: skip
    except UnknownMember:
        return Outcome("skipped", "unknown_member", member_id)
    except CouponNotIssuable:
        return Outcome("skipped", "coupon_not_issuable", member_id)
    return Outcome(member_id=member_id, coupon_code=coupon.code)


def _award(ctx: HandlerContext, member_id: str, award: Any, key: str) -> Outcome:
    from loyalty.points import award_points

    award_points(
        ctx, member_id, award.points, reason=award.reason, idempotency_key=key, now=ctx.now,
        program=ctx.program,
    )  # fmt: skip
    return Outcome(member_id=member_id, points=award.points)


def _send(
    ctx: HandlerContext, row: Any, campaign: Campaign, member_id: str, send: Any, key: str
) -> Outcome:
    from notifications.requests import request_message

    variables = message_variables(
        ctx.conn, row, recipient_id=member_id, program=ctx.program, now=ctx.now
    )
    result = request_message(
        ctx, member_id=member_id, channels=send.channel, template_id=send.template,
        variables=variables, kind=campaign.kind, dedupe_key=key, campaign_id=campaign.id,
        now=ctx.now, program=ctx.program,
    )  # fmt: skip
    status = "skipped" if result.status in ("suppressed", "failed") else "done"
    return Outcome(status, result.reason, member_id, message_id=result.message_id)


def _record(
    conn: Connection, row: Any, step_id: str, kind: str, outcome: Outcome, now: datetime
) -> None:
    values = {
        "journey_id": row.journey_id, "step_id": step_id, "kind": kind, "status": outcome.status,
        "reason": (outcome.reason or None) and outcome.reason[:64],
        "member_id": outcome.member_id or row.member_id, "message_id": outcome.message_id,
        "coupon_code": outcome.coupon_code, "points": outcome.points, "executed_at": now,
    }  # fmt: skip
    conn.execute(insert_ignoring_conflicts(conn, journey_steps, ["journey_id", "step_id"]), values)


def _move(
    conn: Connection, row: Any, *, step_id: str | None, at: datetime, version: str, now: datetime
) -> None:
    conn.execute(
        update(journeys)
        .where(journeys.c.journey_id == row.journey_id)
        .values(
            step_id=step_id,
            next_run_at=at,
            version=version,
            attempts=0,
            last_error=None,
            updated_at=now,
        )
    )


def _end(
    conn: Connection,
    row: Any,
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
    conn.execute(update(journeys).where(journeys.c.journey_id == row.journey_id).values(**values))


def _record_failure(conn: Connection, row: Any, exc: Exception, *, now: datetime) -> None:
    attempts = (row.attempts or 0) + 1
    wait = min(FIRST_BACKOFF * 2 ** (attempts - 1), MAX_BACKOFF)
    conn.execute(
        update(journeys)
        .where(journeys.c.journey_id == row.journey_id)
        .values(
            attempts=attempts, last_error=str(exc)[:2000], next_run_at=now + wait, updated_at=now
        )
    )


def journey_ids_in(conn: Connection, journey_ids: Sequence[str]) -> list[str]:
    """The given ids that are journeys (for callers holding ids from elsewhere)."""
    query = select(journeys.c.journey_id).where(in_values(conn, journeys.c.journey_id, journey_ids))
    return list(conn.execute(query).scalars())
