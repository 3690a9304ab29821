"""The foundation's own scheduled job: a heartbeat operators can watch to see schedulers live."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from core.broker import actor
from core.scheduling import Job, scheduled
from core.state import get_value, set_value

HEARTBEAT = "scheduler_heartbeat"


@actor(queue_name="jobs", max_retries=3)
def record_heartbeat(fire_time: str) -> None:
    """Record the newest heartbeat firing."""
    from core.runtime import get_runtime

    with get_runtime().engine.begin() as conn:
        set_value(conn, HEARTBEAT, fire_time)


@scheduled
def heartbeat_jobs(runtime: Any) -> list[Job]:
    return [
        Job(
            id="core.heartbeat",
            trigger=CronTrigger(minute="*/15", timezone="UTC"),
            enqueue=lambda at: record_heartbeat.send(at.isoformat()),
            misfire_grace=timedelta(minutes=15),
            description="records that a scheduler is alive, every 15 minutes",
            simulated=False,
        )
    ]


def latest_heartbeat(conn: Any) -> datetime | None:
    value = get_value(conn, HEARTBEAT)
    return datetime.fromisoformat(value) if value else None
