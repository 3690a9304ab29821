"""Scheduled jobs that bring deferred, retried and stranded messages back when due.

* ``notifications.release`` fires exactly when the next waiting message becomes due (its
  trigger asks the database), and at least once a day. ``tick`` runs it like any job, so a
  simulated night's deferrals go out at the simulated morning; a long tick notices messages
  deferred by other jobs of the same tick within a day at most.
* ``notifications.sweep`` fires every five minutes in a real scheduler only (not in ``tick``):
  the safety net for messages whose delayed actor message was lost and for sends stuck in
  ``sending`` after a worker died.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from core.scheduling import Job, scheduled

_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


class DueMessagesTrigger(BaseTrigger):
    """Fires when the earliest waiting message is due, else at the next UTC midnight."""

    def __init__(self, runtime: Any, *, fallback: timedelta = timedelta(days=1)) -> None:
        self.runtime = runtime
        self.fallback = fallback

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        from notifications.release import next_due_time

        # Strictly after the previous firing: a message it could not move is not re-fired.
        due = next_due_time(self.runtime.engine, after=previous_fire_time or _BEGINNING)
        poll = _next_midnight(max(now, previous_fire_time or now), self.fallback)
        return max(now, min(due, poll)) if due is not None else poll

    def __str__(self) -> str:
        return "when a waiting message is due"


def _next_midnight(moment: datetime, step: timedelta) -> datetime:
    start = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start + step


def _enqueue_release(at: datetime) -> Any:
    from notifications.actors import release_due

    return release_due.send(at.isoformat())


@scheduled
def notification_jobs(runtime: Any) -> list[Job]:
    return [
        Job(
            id="notifications.release",
            trigger=DueMessagesTrigger(runtime),
            enqueue=_enqueue_release,
            misfire_grace=timedelta(hours=6),
            description="sends deferred and retried messages when they are due",
            # Asked again after every firing: a campaign step deferred by quiet hours at 07:00
            # must go at 08:30, not at the next poll (core.scheduling, dynamic jobs).
            dynamic=True,
        ),
        Job(
            id="notifications.sweep",
            trigger=CronTrigger(minute="*/5", timezone=UTC),
            enqueue=_enqueue_release,
            misfire_grace=timedelta(minutes=5),
            description="re-sends messages whose worker or delayed actor message was lost",
            simulated=False,
        ),
    ]
