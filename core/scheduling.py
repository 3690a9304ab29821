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
"""

from __future__ import annotations

import heapq
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
    """All firings of all jobs in ``(after, until]``, merged in time order (ties by job id)."""
    streams = [_stream(job, after, until) for job in jobs if job.simulated]
    yield from heapq.merge(*streams, key=lambda item: (item[0], item[1].id))


def _stream(job: Job, after: datetime, until: datetime) -> Iterator[tuple[datetime, Job]]:
    yield from ((fire_time, job) for fire_time in fire_times(job.trigger, after, until))


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
    claimed = 0
    while not stop.is_set():
        now = clock.now()
        for job in jobs:
            latest, pending[job.id] = _coalesce(job, pending[job.id], now)
            if latest is None:
                continue
            if now - latest > job.misfire_grace:
                log.warning("skipped %s at %s: overdue beyond its grace", job.id, latest)
                continue
            claimed += fire(job, latest, engine=engine, now=now, owner=owner)
        clock.sleep(_seconds_until(pending.values(), clock.now(), max_sleep))
    return claimed


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
