"""Scheduled jobs: pure fire-time rules, once-only claims, and two schedulers racing for real."""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, func, select

from core.clock import FixedClock, ScaledClock
from core.cron import CronError, cron_trigger
from core.scheduling import Job, _coalesce, due_in_order, fire, fire_times, run_scheduler
from core.state import claim_firing, job_firings

T0 = datetime(2026, 11, 20, 10, 0, 50, tzinfo=UTC)
SHANGHAI = "Asia/Shanghai"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("trigger", "after", "until", "expected"),
    [
        (
            CronTrigger(hour=2, minute=0, timezone=SHANGHAI),
            "2026-11-20T00:00:00+08:00",
            "2026-11-22T02:00:00+08:00",
            ["2026-11-20T02:00:00+08:00", "2026-11-21T02:00:00+08:00", "2026-11-22T02:00:00+08:00"],
        ),
        (
            CronTrigger(hour=2, minute=0, timezone=SHANGHAI),
            "2026-11-20T02:00:00+08:00",
            "2026-11-20T23:59:00+08:00",
            [],
        ),
        (
            cron_trigger("0 10 * * 6", timezone=SHANGHAI),
            "2026-11-16T00:00:00+08:00",
            "2026-11-30T00:00:00+08:00",
            ["2026-11-21T10:00:00+08:00", "2026-11-28T10:00:00+08:00"],
        ),
        (
            IntervalTrigger(minutes=30, start_date=at("2026-11-20T00:00:00+00:00")),
            "2026-11-20T00:10:00+00:00",
            "2026-11-20T01:00:00+00:00",
            ["2026-11-20T00:30:00+00:00", "2026-11-20T01:00:00+00:00"],
        ),
    ],
)
def test_fire_times_lists_every_firing_after_the_start_up_to_and_including_the_end(
    trigger: Any, after: str, until: str, expected: list[str]
) -> None:
    fired = list(fire_times(trigger, at(after), at(until)))

    assert fired == [at(t) for t in expected]


@pytest.mark.parametrize(
    ("expression", "weekday"),
    [
        ("0 10 * * 6", 5),
        ("0 10 * * 0", 6),
        ("0 10 * * 7", 6),
        ("0 10 * * 1", 0),
        ("0 10 * * sat", 5),
    ],
)
def test_cron_weekdays_count_from_sunday_as_in_crontab(expression: str, weekday: int) -> None:
    trigger = cron_trigger(expression, timezone=SHANGHAI)

    fire = trigger.get_next_fire_time(None, at("2026-11-16T00:00:00+08:00"))

    assert fire is not None and fire.weekday() == weekday and fire.hour == 10


@pytest.mark.parametrize(
    ("expression", "message"),
    [("0 10 * *", "got 4, expected 5"), ("0 25 * * *", "hour"), ("0 1 * * 9", "0-7")],
)
def test_a_bad_cron_expression_says_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        cron_trigger(expression, timezone="UTC")


def test_firings_of_several_jobs_come_in_time_order() -> None:
    daily = Job("daily", CronTrigger(hour=2, timezone="UTC"), enqueue=print)
    hourly = Job("hourly", CronTrigger(minute=0, timezone="UTC"), enqueue=print)

    order = [(t.hour, j.id) for t, j in due_in_order([hourly, daily], T0, T0 + timedelta(hours=17))]

    assert order[:3] == [(11, "hourly"), (12, "hourly"), (13, "hourly")]
    assert (2, "daily") in order and order.index((2, "daily")) == order.index((2, "hourly")) - 1


def test_several_overdue_firings_coalesce_into_the_newest() -> None:
    job = Job("minutely", CronTrigger(minute="*", timezone="UTC"), enqueue=print)
    pending = datetime(2026, 11, 20, 10, 1, tzinfo=UTC)

    latest, following = _coalesce(job, pending, datetime(2026, 11, 20, 10, 4, 30, tzinfo=UTC))

    assert latest == datetime(2026, 11, 20, 10, 4, tzinfo=UTC)
    assert following == datetime(2026, 11, 20, 10, 5, tzinfo=UTC)


def test_a_firing_is_claimed_once_whoever_asks(engine: Engine) -> None:
    fire_time = datetime(2026, 11, 20, 2, tzinfo=UTC)
    with engine.begin() as conn:
        first = claim_firing(conn, job_id="j", fire_time=fire_time, now=T0, owner="a")
        second = claim_firing(conn, job_id="j", fire_time=fire_time, now=T0, owner="b")

    assert (first, second) == (True, False)


def test_a_failed_enqueue_releases_the_claim_so_the_firing_is_not_lost(engine: Engine) -> None:
    def broken(_: datetime) -> None:
        raise ConnectionError("broker down")

    job = Job("j", CronTrigger(minute="*", timezone="UTC"), enqueue=broken)
    with pytest.raises(ConnectionError):
        fire(job, T0, engine=engine, now=T0, owner="a")

    assert fire(Job("j", job.trigger, enqueue=lambda _: None), T0, engine=engine, now=T0, owner="b")


def test_a_scheduler_started_late_catches_up_the_newest_missed_firing_within_its_grace(
    engine: Engine,
) -> None:
    fired: list[datetime] = []
    job = Job(
        "daily",
        CronTrigger(hour=2, timezone="UTC"),
        enqueue=fired.append,
        misfire_grace=timedelta(hours=23),
    )
    stop = threading.Event()
    clock = FixedClock(datetime(2026, 11, 20, 9, 30, tzinfo=UTC))

    def stop_after_first_sleep(seconds: float) -> None:
        stop.set()

    clock.sleep = stop_after_first_sleep  # type: ignore[method-assign]
    run_scheduler([job], engine=engine, clock=clock, stop=stop)

    assert fired == [datetime(2026, 11, 20, 2, tzinfo=UTC)]


def _race(
    pg_url: str,
    redis_url: str,
    seconds: float,
    owner: str,
    ready: Any,
    go: Any,
    origin: Any,
    claims: Any,
) -> None:
    from core.db import get_engine

    client = redis.Redis.from_url(redis_url)
    engine = get_engine(pg_url)
    job = Job(
        "test.minutely",
        CronTrigger(minute="*", timezone="UTC"),
        enqueue=lambda t: client.rpush("fired", t.isoformat()),
        misfire_grace=timedelta(seconds=45),
    )
    ready.wait()  # both processes are up; the parent now sets the shared start
    go.wait()
    stop = threading.Event()
    time.sleep(max(0.0, origin.value - time.time()))
    threading.Timer(origin.value + seconds - time.time(), stop.set).start()
    clock = ScaledClock(T0, speed=60, origin=origin.value)
    claims.put(run_scheduler([job], engine=engine, clock=clock, stop=stop, owner=owner))


def test_two_scheduler_processes_fire_a_once_a_minute_job_exactly_once_per_minute(
    pg_engine: Engine, pg_url: str, redis_url: str
) -> None:
    # Both processes share one clock running 60x: 5.5 real seconds are 5.5 minutes of firings.
    context = multiprocessing.get_context("spawn")
    ready, go = context.Barrier(3), context.Barrier(3)
    origin, claims = context.Value("d", 0.0), context.Queue()
    racers = [
        context.Process(
            target=_race, args=(pg_url, redis_url, 5.5, name, ready, go, origin, claims)
        )
        for name in ("one", "two")
    ]
    for racer in racers:
        racer.start()
    ready.wait(timeout=60)
    origin.value = time.time() + 0.5
    go.wait(timeout=5)
    for racer in racers:
        racer.join(timeout=60)

    fired = [at(v.decode()) for v in redis.Redis.from_url(redis_url).lrange("fired", 0, -1)]
    expected = [T0.replace(second=0) + timedelta(minutes=n) for n in range(1, 7)]
    assert sorted(fired) == expected
    assert claims.get(timeout=5) + claims.get(timeout=5) == len(expected)
    with pg_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(job_firings)).scalar() == 6
