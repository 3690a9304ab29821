"""Frequency caps are counted atomically across workers: Redis when configured, else the DB."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, select

from notifications.caps import CapCounter, DatabaseCapCounter, RedisCapCounter
from notifications.guardrails import Period
from notifications.tables import cap_counters

TODAY: dict[Period, str] = {"day": "d2026-11-05", "week": "w2026-W45"}
TOMORROW: dict[Period, str] = {"day": "d2026-11-06", "week": "w2026-W45"}


def reserve(
    engine: Engine, counter: CapCounter, periods: dict[Period, str], limits: dict[Period, int]
) -> Period | None:
    with engine.begin() as conn:
        return counter.reserve(conn, member_id="m-1", periods=periods, limits=limits)


def race(
    engine: Engine, counter: CapCounter, workers: int, limits: dict[Period, int]
) -> list[Period | None]:
    barrier = threading.Barrier(workers)
    results: list[Period | None] = []
    lock = threading.Lock()

    def work() -> None:
        barrier.wait()
        outcome = reserve(engine, counter, TODAY, limits)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture(params=["database", "redis"])
def counter(request: pytest.FixtureRequest) -> CapCounter:
    if request.param == "database":
        return DatabaseCapCounter()
    return RedisCapCounter(request.getfixturevalue("redis_url"))


def test_racing_workers_never_send_more_than_the_daily_cap(
    engine: Engine, counter: CapCounter
) -> None:
    outcomes = race(engine, counter, workers=12, limits={"day": 3, "week": 10})

    assert outcomes.count(None) == 3
    assert outcomes.count("day") == 9


def test_the_weekly_cap_spans_days(engine: Engine, counter: CapCounter) -> None:
    limits: dict[Period, int] = {"day": 2, "week": 3}

    today = [reserve(engine, counter, TODAY, limits) for _ in range(3)]
    tomorrow = [reserve(engine, counter, TOMORROW, limits) for _ in range(2)]

    assert today == [None, None, "day"]
    assert tomorrow == [None, "week"]


def test_a_full_week_leaves_the_day_uncounted(engine: Engine) -> None:
    counter = DatabaseCapCounter()
    limits: dict[Period, int] = {"day": 5, "week": 1}

    outcomes = [reserve(engine, counter, TODAY, limits) for _ in range(3)]

    assert outcomes == [None, "week", "week"]
    with engine.connect() as conn:
        counts = dict(conn.execute(select(cap_counters.c.period, cap_counters.c.count)).all())
    assert counts == {"d2026-11-05": 1, "w2026-W45": 1}


def test_no_limits_means_nothing_is_counted(engine: Engine, counter: CapCounter) -> None:
    assert reserve(engine, counter, TODAY, {}) is None


def test_redis_counters_are_shared_by_separate_clients(engine: Engine, redis_url: str) -> None:
    first, second = RedisCapCounter(redis_url), RedisCapCounter(redis_url)
    limits: dict[Period, int] = {"day": 2}
    outcomes = [reserve(engine, counter, TODAY, limits) for counter in (first, second, first)]

    assert outcomes == [None, None, "day"]
