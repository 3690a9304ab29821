"""The package's actors and scheduled jobs: thin, each calls one service function.

* ``coupons.expire``, daily at 00:05 business time: releases lapsed reservations and marks
  codes past their expiry as expired (reads treat them so already; this keeps the table true).
* ``coupons.release_reservations``, every 5 minutes: releases lapsed reservations so their
  share of the limits returns quickly, and marks the lapsed checkout reservations released
  (one UPDATE). Operational (``simulated=False``): reservations come
  from live checkout calls, never from a simulated ``tick``, and reserving releases lapsed
  holds of the same coupon anyway.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from core.broker import actor
from core.cron import cron_trigger
from core.events.handlers import unit_of_work
from core.scheduling import Job, scheduled

log = logging.getLogger(__name__)


@actor(queue_name="coupons", max_retries=5)
def expire_coupons(fire_time: str) -> None:
    """Release lapsed holds and expire codes, as of the job's fire time."""
    from core.runtime import get_runtime
    from coupons.checkout import expire_wallets

    now = datetime.fromisoformat(fire_time)
    with unit_of_work(get_runtime().engine, now=now) as ctx:
        released, expired = expire_wallets(ctx.conn, now=now)
    log.info("coupons at %s: %d hold(s) released, %d code(s) expired", fire_time, released, expired)


@actor(queue_name="coupons", max_retries=5)
def release_reservations(fire_time: str) -> None:
    """Release reservations whose hold lapsed by the fire time."""
    from core.runtime import get_runtime
    from coupons.checkout import release_expired_reservations
    from coupons.reservations import close_lapsed_reservations

    now = datetime.fromisoformat(fire_time)
    with unit_of_work(get_runtime().engine, now=now) as ctx:
        released = release_expired_reservations(ctx.conn, now=now)
        closed = close_lapsed_reservations(ctx.conn, now=now)
    log.info("reservations at %s: %d code(s) released, %d closed", fire_time, len(released), closed)


@scheduled
def coupon_jobs(runtime: Any) -> list[Job]:
    program = runtime.program_or_none()
    zone = program.program_file.program.timezone if program is not None else "UTC"
    return [
        Job(
            id="coupons.expire",
            trigger=cron_trigger("5 0 * * *", timezone=zone),
            enqueue=lambda at: expire_coupons.send(at.isoformat()),
            misfire_grace=timedelta(hours=23),
            description="releases lapsed reservations and expires codes, daily",
        ),
        Job(
            id="coupons.release_reservations",
            trigger=cron_trigger("*/5 * * * *", timezone="UTC"),
            enqueue=lambda at: release_reservations.send(at.isoformat()),
            misfire_grace=timedelta(minutes=5),
            description="releases reservations whose hold lapsed, every 5 minutes",
            simulated=False,
        ),
    ]
