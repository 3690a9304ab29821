"""The foundation's own scheduled jobs: a heartbeat operators can watch to see schedulers live,
and the retry of failed event handlers."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from core.broker import actor
from core.scheduling import Job, scheduled
from core.state import get_value, set_value

HEARTBEAT = "scheduler_heartbeat"
log = logging.getLogger(__name__)


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


@actor(queue_name="jobs", max_retries=3)
def retry_handler_failures(fire_time: str) -> None:
    """Retry the handler failures whose backoff has passed, with the loaded program."""
    from core.events.retry import retry_failures
    from core.runtime import get_runtime

    runtime = get_runtime()
    report = retry_failures(
        runtime.engine, program=runtime.program, now=runtime.now(), due_only=True
    )
    if report.resolved or report.failed:
        log.info("handler failures retried: %s", report.as_dict())


@scheduled
def retry_jobs(runtime: Any) -> list[Job]:
    return [
        Job(
            id="core.retry_handler_failures",
            trigger=CronTrigger(minute="*/5", timezone="UTC"),
            enqueue=lambda at: retry_handler_failures.send(at.isoformat()),
            misfire_grace=timedelta(minutes=5),
            description="retries failed event handlers whose backoff has passed, every 5 minutes",
            # Operational: in a simulation (tick, --replay) run `events retry --all` instead.
            simulated=False,
        )
    ]
