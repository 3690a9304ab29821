"""``tick`` and ``replay``: the engine clock moves forward and every due job fires on the way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

import worker
from core.broker import actor
from core.clock import now as clock_now
from core.cron import cron_trigger
from core.events.tables import events
from core.runtime import Runtime
from core.scheduling import Job
from core.settings import Settings
from core.ticking import TickError, replay, tick, ticked_to

observed: list[tuple[str, datetime]] = []


@actor(queue_name="test")
def observe(fire_time: str) -> None:
    observed.append((fire_time, clock_now()))


@pytest.fixture
def runtime(db_url: str, engine: Engine) -> Iterator[Runtime]:
    settings = Settings(_env_file=None, database_url=db_url, program_dir="/nonexistent")  # type: ignore[call-arg]
    worker.setup(settings)
    observed.clear()
    yield Runtime(settings=settings)


def daily(job_id: str = "daily", at: str = "0 2 * * *") -> Job:
    return Job(
        job_id,
        cron_trigger(at, timezone="Asia/Shanghai"),
        enqueue=lambda t: observe.send(t.isoformat()),
    )


def shanghai(text: str) -> datetime:
    return datetime.fromisoformat(text + "+08:00")


def test_tick_fires_each_due_job_in_order_and_its_work_sees_the_firing_time(
    runtime: Runtime,
) -> None:
    report = tick(
        runtime, [daily()], start=shanghai("2026-11-20T00:00"), until=shanghai("2026-11-22T12:00")
    )

    assert [t for t, _ in report.fired] == [
        shanghai("2026-11-20T02:00"),
        shanghai("2026-11-21T02:00"),
        shanghai("2026-11-22T02:00"),
    ]
    assert [seen for _, seen in observed] == [t for t, _ in report.fired]


def test_a_second_tick_continues_where_the_last_one_stopped(runtime: Runtime) -> None:
    tick(runtime, [daily()], start=shanghai("2026-11-20T00:00"), until=shanghai("2026-11-20T12:00"))

    report = tick(runtime, [daily()], until=shanghai("2026-11-21T12:00"))

    assert report.start == shanghai("2026-11-20T12:00")
    assert [t for t, _ in report.fired] == [shanghai("2026-11-21T02:00")]
    assert ticked_to(runtime) == shanghai("2026-11-21T12:00")


def test_the_first_tick_without_a_start_fires_nothing_before_its_target(runtime: Runtime) -> None:
    report = tick(runtime, [daily()], until=shanghai("2026-11-20T12:00"))

    assert report.fired == []


def test_ticking_backwards_is_refused_with_the_time_already_reached(runtime: Runtime) -> None:
    tick(runtime, [daily()], until=shanghai("2026-11-21T00:00"))

    with pytest.raises(TickError, match="already ticked to 2026-11-20T16:00:00"):
        tick(runtime, [daily()], until=shanghai("2026-11-20T00:00"))


def test_replay_ingests_each_event_at_its_time_with_jobs_firing_in_between(
    runtime: Runtime, examples: Path
) -> None:
    lines = (examples / "events" / "scenario.jsonl").read_text().splitlines()
    last = max(datetime.fromisoformat(line.split('"occurred_at": "')[1][:25]) for line in lines)

    report = replay(runtime, [daily()], lines, source="scenario")

    assert report.ingest.as_dict() == {"accepted": 17, "duplicate": 1, "rejected": 1}
    first = shanghai("2026-01-05T09:30")
    # Both ends lie after 02:00, so the job fires once on each day after the first event's.
    assert len(report.fired) == (last.date() - first.date()).days == 318
    assert report.fired[0][0] == shanghai("2026-01-06T02:00")
    with runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 17
        received = conn.execute(select(events.c.received_at, events.c.occurred_at)).all()
    assert all(r == o for r, o in received), "each event is ingested at its own time"
    assert ticked_to(runtime) == last
