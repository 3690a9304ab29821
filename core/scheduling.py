"""Scheduled jobs: a registry, the firing rule, and the loop both ``scheduler`` and ``tick`` use.

A job only enqueues work. Each firing is claimed in the ``job_firings`` table (primary key: job
id and scheduled time) inside the transaction that enqueues it, so any number of scheduler
processes fire each scheduled time exactly once.

Misfires and coalescing, chosen on purpose:

* A firing is due at its scheduled time. A scheduler that finds a firing overdue by more than
  the job's ``misfire_grace`` skips it (logged); daily jobs carry a grace of 23 hours, so a
  scheduler started late in the day still runs that day's job, once.
* Several overdue firings of one job coalesce into one: only the newest is fired. Firings missed
  while no scheduler ran are therefore caught up once on start (if within the grace), never
  replayed one by one; every job is idempotent, so a caught-up run does the same work.
* ``tick`` is a simulation: it fires every firing in its window, in time order, none skipped.

A **dynamic** job's trigger reads the data (the earliest journey step due, the next cart to
become idle), so the time it answers changes as other jobs and events write. Both loops ask it
again after every firing (``tick``) or every pass (``scheduler``), and it answers with the
earliest due work strictly after its own previous firing, or ``now`` if that is overdue. The
scheduler fires it once per pass for all that is due, claimed under the earliest due time, so
schedulers seeing the same work claim the same firing; the work takes what is due when it runs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import Engine

from core.clock import Clock
from core.state import claim_firing

log = logging.getLogger(__name__)
_EPSILON = timedelta(microseconds=1)


@dataclass(frozen=True)
class Job:
    """A job: when (an APScheduler trigger) and what to enqueue for a scheduled time."""

    id: str
    trigger: BaseTrigger
    enqueue: Callable[[datetime], Any]
    misfire_grace: timedelta = timedelta(hours=1)
    description: str = ""
    # False for operational jobs (a heartbeat) that mean nothing in a simulated run of ``tick``.
    simulated: bool = True
    # True when the trigger reads the data: asked again after every firing (module docstring).
    dynamic: bool = False


JobFactory = Callable[[Any], Sequence[Job]]


class JobRegistry:
    """Factories that build jobs from the loaded program (cron times come from its files)."""

    def __init__(self) -> None:
        self._factories: list[JobFactory] = []

    def register(self, factory: JobFactory) -> JobFactory:
        if factory not in self._factories:
            self._factories.append(factory)
        return factory

    def build(self, runtime: Any) -> list[Job]:
        jobs = [job for factory in self._factories for job in factory(runtime)]
        ids = [job.id for job in jobs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"job ids must be unique; declared twice: {', '.join(duplicates)}")
        return jobs


jobs_registry = JobRegistry()
scheduled = jobs_registry.register


def fire_times(trigger: BaseTrigger, after: datetime, until: datetime) -> Iterator[datetime]:
    """Every fire time of ``trigger`` in ``(after, until]``; pure, the time is passed in."""
    fire = trigger.get_next_fire_time(None, after + _EPSILON)
    while fire is not None and fire <= until:
        yield fire
        fire = trigger.get_next_fire_time(fire, fire + _EPSILON)


def due_in_order(
    jobs: Sequence[Job], after: datetime, until: datetime
) -> Iterator[tuple[datetime, Job]]:
    """All firings of all jobs in ``(after, until]``, in time order (ties by job id).

    Each firing is yielded before the next is computed, so the caller runs its work first: a
    dynamic job is then asked again, and sees what that work wrote.
    """
    simulated = [job for job in jobs if job.simulated]
    previous: dict[str, datetime | None] = {job.id: None for job in simulated}
    upcoming = {job.id: _next_after(job, None, after) for job in simulated}
    by_id = {job.id: job for job in simulated}
    while True:
        due = [(at, job_id) for job_id, at in upcoming.items() if at is not None and at <= until]
        if not due:
            return
        at, job_id = min(due)
        job = by_id[job_id]
        yield at, job
        previous[job_id] = at
        upcoming[job_id] = _next_after(job, at, at)
        for other in simulated:
            if other.dynamic and other.id != job_id:
                upcoming[other.id] = _next_after(other, previous[other.id], at)


def _next_after(job: Job, previous: datetime | None, after: datetime) -> datetime | None:
    """The job's first fire time strictly after ``after`` (``previous``: its last firing)."""
    return job.trigger.get_next_fire_time(previous, after + _EPSILON)


def fire(job: Job, fire_time: datetime, *, engine: Engine, now: datetime, owner: str) -> bool:
    """Claim this firing and enqueue its work in one transaction; False if another claimed it."""
    with engine.begin() as conn:
        if not claim_firing(conn, job_id=job.id, fire_time=fire_time, now=now, owner=owner):
            return False
        job.enqueue(fire_time)
    log.info("fired %s for %s", job.id, fire_time.isoformat())
    return True


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_scheduler(
    jobs: Sequence[Job],
    *,
    engine: Engine,
    clock: Clock,
    stop: threading.Event,
    owner: str | None = None,
    max_sleep: float = 1.0,
) -> int:
    """Fire due jobs until ``stop`` is set; returns how many firings this process claimed."""
    owner = owner or default_owner()
    start = clock.now()
    pending = {job.id: _first_pending(job, start) for job in jobs}
    last: dict[str, datetime] = {}
    claimed = 0
    while not stop.is_set():
        now = clock.now()
        for job in jobs:
            if job.dynamic:
                claimed += _fire_dynamic(job, pending, last, start=start, now=now,
                                         engine=engine, owner=owner)  # fmt: skip
                continue
            latest, pending[job.id] = _coalesce(job, pending[job.id], now)
            if latest is None:
                continue
            if now - latest > job.misfire_grace:
                log.warning("skipped %s at %s: overdue beyond its grace", job.id, latest)
                continue
            claimed += fire(job, latest, engine=engine, now=now, owner=owner)
        clock.sleep(_seconds_until(pending.values(), clock.now(), max_sleep))
    return claimed


def _fire_dynamic(
    job: Job,
    pending: dict[str, datetime | None],
    last: dict[str, datetime],
    *,
    start: datetime,
    now: datetime,
    engine: Engine,
    owner: str,
) -> int:
    """Fire a dynamic job once for everything due by ``now``, claimed under the earliest due
    time: the schedulers that see the same due work claim the same firing, and one wins. The
    work it enqueues takes everything due when it runs."""
    after = last.get(job.id, start - job.misfire_grace)
    due = job.trigger.get_next_fire_time(last.get(job.id), after + _EPSILON)
    pending[job.id] = due
    if due is None or due > now:
        return 0
    last[job.id] = now
    pending[job.id] = None
    if now - due > job.misfire_grace:
        log.warning("skipped %s at %s: overdue beyond its grace", job.id, due)
        return 0
    return int(fire(job, due, engine=engine, now=now, owner=owner))


def _first_pending(job: Job, start: datetime) -> datetime | None:
    return job.trigger.get_next_fire_time(None, start - job.misfire_grace)


def _coalesce(
    job: Job, pending: datetime | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """The newest due firing (older due ones are coalesced into it) and the next pending one."""
    latest = None
    while pending is not None and pending <= now:
        latest = pending
        pending = job.trigger.get_next_fire_time(pending, pending + _EPSILON)
    return latest, pending


def _seconds_until(pending: Any, now: datetime, max_sleep: float) -> float:
    upcoming = [t for t in pending if t is not None]
    if not upcoming:
        return max_sleep
    return max(0.0, min(max_sleep, (min(upcoming) - now).total_seconds()))
