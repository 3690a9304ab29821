"""Loyalty's daily jobs (they only enqueue) and the actors that do the work for a fire time.

* ``loyalty.tiers.recalculate`` at ``tiers.recalculate_at``: one actor plans member ranges of
  about :data:`MEMBERS_PER_RANGE` members and enqueues one actor per range, so several workers
  share the run;
* ``loyalty.points.expire`` at 00:00, when the day's lots expire;
* ``loyalty.referrals.settle`` at 00:30, after expiry.

All in the business time zone, each with a 23-hour misfire grace. And, every 15 minutes (UTC,
operational: ``simulated=False``, since holds come from live checkout calls, never from a
simulated ``tick``):

* ``loyalty.points.drop_lapsed_holds``: deletes the checkout holds whose time has passed, in one
  statement. Housekeeping: a lapsed hold already counts for nothing (``loyalty.holds``), so
  running it late, twice, or from two schedulers at once changes no balance.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from core.broker import actor
from core.cron import cron_trigger
from core.events.handlers import unit_of_work
from core.events.tables import members
from core.scheduling import Job, scheduled
from loyalty.expiry import expire_points
from loyalty.holds import drop_lapsed_holds
from loyalty.referral_store import settle_referrals
from loyalty.tier_recalc import MemberRange, plan_ranges, recalculate_tiers

# A range's aggregation over its share of 10M orders stays in 256MB of work_mem at this size.
MEMBERS_PER_RANGE = 250_000
QUEUE = "loyalty"
DAILY_GRACE = timedelta(hours=23)
HOLDS_EVERY_MINUTES = 15
log = logging.getLogger(__name__)


def _runtime() -> Any:
    from core.runtime import get_runtime

    return get_runtime()


@actor(queue_name=QUEUE, max_retries=5)
def plan_tier_recalculation(fire_time: str) -> None:
    """Split the members into ranges and enqueue one recalculation per range."""
    with _runtime().engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(members)).scalar_one()
        ranges = plan_ranges(conn, chunks=math.ceil(count / MEMBERS_PER_RANGE))
    for members_in in ranges:
        recalculate_tier_range.send(fire_time, members_in.low, members_in.high)


@actor(queue_name=QUEUE, max_retries=5)
def recalculate_tier_range(fire_time: str, low: str | None, high: str | None) -> None:
    runtime = _runtime()
    with unit_of_work(runtime.engine, now=runtime.now(), program=runtime.program) as ctx:
        recalculate_tiers(
            ctx,
            as_of=datetime.fromisoformat(fire_time),
            program=runtime.program,
            members_in=MemberRange(low, high),
        )


@actor(queue_name=QUEUE, max_retries=5)
def expire_due_points(fire_time: str) -> None:
    runtime = _runtime()
    with unit_of_work(runtime.engine, now=runtime.now(), program=runtime.program) as ctx:
        expire_points(ctx.conn, as_of=datetime.fromisoformat(fire_time), now=ctx.now)


@actor(queue_name=QUEUE, max_retries=5)
def settle_due_referrals(fire_time: str) -> None:
    runtime = _runtime()
    with unit_of_work(runtime.engine, now=runtime.now(), program=runtime.program) as ctx:
        settle_referrals(ctx, as_of=datetime.fromisoformat(fire_time), program=runtime.program)


@actor(queue_name=QUEUE, max_retries=5)
def drop_lapsed_points_holds(fire_time: str) -> None:
    """Delete the points holds lapsed by the fire time."""
    now = datetime.fromisoformat(fire_time)
    with unit_of_work(_runtime().engine, now=now) as ctx:
        dropped = drop_lapsed_holds(ctx.conn, now=now)
    log.info("points holds at %s: %d lapsed hold(s) dropped", fire_time, dropped)


@scheduled
def loyalty_housekeeping_jobs(runtime: Any) -> list[Job]:
    """The periodic housekeeping (with or without a program: holds outlive a program change)."""
    return [
        Job(
            id="loyalty.points.drop_lapsed_holds",
            trigger=cron_trigger(f"*/{HOLDS_EVERY_MINUTES} * * * *", timezone="UTC"),
            enqueue=lambda t: drop_lapsed_points_holds.send(t.isoformat()),
            misfire_grace=timedelta(minutes=HOLDS_EVERY_MINUTES),
            description="deletes lapsed checkout points holds, every 15 minutes",
            simulated=False,
        )
    ]


@scheduled
def loyalty_jobs(runtime: Any) -> list[Job]:
    """The daily jobs, at the program's times in its time zone (none without a program)."""
    program = runtime.program_or_none()
    if program is None:
        return []
    zone = program.program_file.program.timezone
    at = program.program_file.tiers.recalculate_at
    return [
        Job(
            id="loyalty.tiers.recalculate",
            trigger=cron_trigger(f"{at.minute} {at.hour} * * *", timezone=zone),
            enqueue=lambda t: plan_tier_recalculation.send(t.isoformat()),
            misfire_grace=DAILY_GRACE,
            description="recalculates every member's tier (downgrades after the grace period)",
        ),
        Job(
            id="loyalty.points.expire",
            trigger=cron_trigger("0 0 * * *", timezone=zone),
            enqueue=lambda t: expire_due_points.send(t.isoformat()),
            misfire_grace=DAILY_GRACE,
            description="expires the points lots due by midnight",
        ),
        Job(
            id="loyalty.referrals.settle",
            trigger=cron_trigger("30 0 * * *", timezone=zone),
            enqueue=lambda t: settle_due_referrals.send(t.isoformat()),
            misfire_grace=DAILY_GRACE,
            description="settles referrals past the return window (emits referral.qualified)",
        ),
    ]
