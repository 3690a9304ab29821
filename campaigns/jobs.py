"""The campaigns package's actors and scheduled jobs.

Jobs only enqueue; actors decode their arguments and call one service function:

* ``campaigns.due_steps`` (dynamic: fires when the earliest waiting journey step is due) and
  ``campaigns.sweep`` (every 5 minutes, operational) enqueue the due journeys in batches;
* ``campaigns.carts.<id>`` (dynamic: fires when the next open cart becomes idle) scans carts;
* ``campaigns.schedule.<id>`` (the campaign's cron, business time zone) splits the members into
  ranges that workers share, each range evaluating the audience and enrolling its matches;
* ``campaigns.birthday.<id>`` (dynamic: when it is ``at`` in a zone where members live);
* ``campaigns.points_expiring.<id>`` (daily at 10:00, business time zone).

A step that fell due while nothing ran is done once when the scheduler starts again: the due
job fires at once for anything overdue, and the journeys' own keys make a double run a no-op.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from campaigns.assignment import control_share
from campaigns.controls import paused_ids, write_first
from campaigns.journeys import due_journey_ids, next_due_time
from campaigns.scans import (
    audience_in_range,
    enrol_abandoned_carts,
    enrol_birthdays,
    enrol_points_expiring,
    enrol_scheduled,
    member_zones,
    next_birthday_firing,
    next_idle_cart_time,
)
from campaigns.steps import AdvanceReport, advance_journeys
from core.broker import actor
from core.cron import cron_trigger
from core.events.handlers import unit_of_work
from core.scheduling import Job, scheduled

QUEUE = "campaigns"
ADVANCE_BATCH = 200  # journeys per actor message (one transaction)
DUE_LIMIT = 100_000  # journeys enqueued per firing; the next firing takes the rest
MEMBERS_PER_RANGE = 20_000  # members per audience range (one actor message)
SWEEP_OVERDUE = timedelta(minutes=2)  # a due step still waiting this long lost its message


def _runtime() -> Any:
    from core.runtime import get_runtime

    return get_runtime()


def enqueue_advance(journey_ids: Sequence[str]) -> None:
    """Have workers run these journeys' due steps, in batches."""
    for start in range(0, len(journey_ids), ADVANCE_BATCH):
        advance.send(list(journey_ids[start : start + ADVANCE_BATCH]))


@actor(queue_name=QUEUE, max_retries=10)
def advance(journey_ids: list[str]) -> None:
    """Run the due steps of these journeys."""
    runtime = _runtime()
    with unit_of_work(runtime.engine, now=runtime.now(), program=runtime.program) as ctx:
        advance_journeys(ctx, journey_ids, report=AdvanceReport())


@actor(queue_name=QUEUE, max_retries=5)
def run_due_steps(fire_time: str, overdue_s: float = 0) -> None:
    """Enqueue every journey with a step due by now (by ``overdue_s`` seconds, for the sweep:
    those are the ones whose actor message was lost, not the ones still queued)."""
    runtime = _runtime()
    now = max(datetime.fromisoformat(fire_time), runtime.now())  # all that is due by now
    with runtime.engine.connect() as conn:
        due = due_journey_ids(conn, now=now - timedelta(seconds=overdue_s), limit=DUE_LIMIT)
    enqueue_advance(due)


def _sweep(at: datetime) -> Any:
    return run_due_steps.send(at.isoformat(), SWEEP_OVERDUE.total_seconds())


def _enrolling(campaign_id: str, work: Callable[[Any, Any, Any], list[str]]) -> None:
    """Run an enrolment for one campaign (if it is loaded and not paused); advance the new."""
    runtime = _runtime()
    campaign = runtime.program.campaigns.get(campaign_id)
    if campaign is None:
        return
    with unit_of_work(runtime.engine, now=runtime.now(), program=runtime.program) as ctx:
        write_first(ctx.conn)
        if campaign_id in paused_ids(ctx.conn, {campaign_id: campaign}):
            return
        created = work(ctx, campaign, runtime)
        if created:
            ctx.after_commit(lambda: enqueue_advance(created))


@actor(queue_name=QUEUE, max_retries=5)
def scan_carts(campaign_id: str, fire_time: str) -> None:
    def work(ctx: Any, campaign: Any, runtime: Any) -> list[str]:
        control = control_share(runtime.program)
        return enrol_abandoned_carts(ctx.conn, campaign, now=ctx.now, control=control)

    _enrolling(campaign_id, work)


@actor(queue_name=QUEUE, max_retries=5)
def plan_audience(campaign_id: str, fire_time: str) -> None:
    """Split the members into ranges; each range is one ``enrol_audience_range`` message."""
    from sqlalchemy import func, select

    from core.events.tables import members
    from loyalty.tier_recalc import plan_ranges

    with _runtime().engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(members)).scalar_one()
        ranges = plan_ranges(conn, chunks=math.ceil(count / MEMBERS_PER_RANGE))
    for members_in in ranges:
        enrol_audience_range.send(campaign_id, fire_time, members_in.low, members_in.high)


@actor(queue_name=QUEUE, max_retries=5)
def enrol_audience_range(
    campaign_id: str, fire_time: str, low: str | None, high: str | None
) -> None:
    def work(ctx: Any, campaign: Any, runtime: Any) -> list[str]:
        chosen = audience_in_range(
            ctx.conn, campaign, program=runtime.program, now=ctx.now, low=low, high=high
        )
        at = datetime.fromisoformat(fire_time)
        control = control_share(runtime.program)
        return enrol_scheduled(
            ctx.conn, campaign, chosen, fire_time=at, now=ctx.now, control=control
        )

    _enrolling(campaign_id, work)


@actor(queue_name=QUEUE, max_retries=5)
def enrol_birthday_members(campaign_id: str, fire_time: str) -> None:
    def work(ctx: Any, campaign: Any, runtime: Any) -> list[str]:
        zone = runtime.program.program_file.program.timezone
        control = control_share(runtime.program)
        return enrol_birthdays(ctx.conn, campaign, business_zone=zone, now=ctx.now, control=control)

    _enrolling(campaign_id, work)


@actor(queue_name=QUEUE, max_retries=5)
def enrol_expiring_points(campaign_id: str, fire_time: str) -> None:
    def work(ctx: Any, campaign: Any, runtime: Any) -> list[str]:
        return enrol_points_expiring(ctx.conn, campaign, program=runtime.program, now=ctx.now)

    _enrolling(campaign_id, work)


class DataTrigger(BaseTrigger):
    """A trigger that asks the database: the earliest due time strictly after its previous
    firing, or now if that is already past (see core.scheduling, dynamic jobs)."""

    def __init__(self, runtime: Any, due: Callable[[Any, datetime | None], datetime | None],
                 description: str) -> None:  # fmt: skip
        self.runtime = runtime
        self.due = due
        self.description = description

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        with self.runtime.engine.connect() as conn:
            due = self.due(conn, previous_fire_time)
        return max(now, due) if due is not None else None

    def __str__(self) -> str:
        return self.description


def _sender(send: Callable[..., Any], *args: Any) -> Callable[[datetime], Any]:
    return lambda at: send(*args, at.isoformat())


@scheduled
def campaign_jobs(runtime: Any) -> list[Job]:
    program = runtime.program_or_none()
    jobs = [
        Job(
            id="campaigns.due_steps",
            trigger=DataTrigger(
                runtime,
                lambda conn, after: next_due_time(conn, after=after),
                "when a journey step is due",
            ),
            enqueue=_sender(run_due_steps.send),
            misfire_grace=timedelta(days=7),
            description="runs journey steps when they fall due (after a wait, a pause, a retry)",
            dynamic=True,
        ),
        Job(
            id="campaigns.sweep",
            trigger=CronTrigger(minute="*/5", timezone="UTC"),
            enqueue=_sweep,
            misfire_grace=timedelta(minutes=5),
            description="runs due journey steps whose actor message was lost, every 5 minutes",
            simulated=False,
        ),
    ]
    for campaign in program.campaigns.values() if program is not None else ():
        job = _trigger_job(runtime, program, campaign)
        if job is not None:
            jobs.append(job)
    return jobs


def _trigger_job(runtime: Any, program: Any, campaign: Any) -> Job | None:
    trigger = campaign.trigger
    zone = program.program_file.program.timezone
    if trigger.cart_abandoned is not None:
        return Job(
            id=f"campaigns.carts.{campaign.id}",
            trigger=DataTrigger(
                runtime,
                lambda conn, after: next_idle_cart_time(conn, campaign, after=after),
                "when an open cart becomes idle",
            ),
            enqueue=_sender(scan_carts.send, campaign.id),
            misfire_grace=timedelta(days=1),
            description=f"enrols abandoned carts in {campaign.id}",
            dynamic=True,
        )
    if trigger.schedule is not None:
        return Job(
            id=f"campaigns.schedule.{campaign.id}",
            trigger=cron_trigger(trigger.schedule.cron, timezone=zone),
            enqueue=_sender(plan_audience.send, campaign.id),
            misfire_grace=timedelta(hours=1),
            description=f"enrols the audience of {campaign.id} ({trigger.schedule.cron})",
        )
    if trigger.birthday is not None:
        at = trigger.birthday.at

        def birthday_due(conn: Any, after: datetime | None) -> datetime | None:
            start = after or runtime.now() - timedelta(days=1)
            return next_birthday_firing(member_zones(conn, zone), at, after=start)

        return Job(
            id=f"campaigns.birthday.{campaign.id}",
            trigger=DataTrigger(runtime, birthday_due, f"at {at} in each member's time zone"),
            enqueue=_sender(enrol_birthday_members.send, campaign.id),
            misfire_grace=timedelta(hours=23),
            description=f"enrols members with a birthday in {campaign.id}",
            dynamic=True,
        )
    if trigger.points_expiring is not None:
        return Job(
            id=f"campaigns.points_expiring.{campaign.id}",
            trigger=CronTrigger(hour=10, minute=0, timezone=zone),
            enqueue=_sender(enrol_expiring_points.send, campaign.id),
            misfire_grace=timedelta(hours=23),
            description=f"enrols members whose points expire soon in {campaign.id}",
        )
    return None
