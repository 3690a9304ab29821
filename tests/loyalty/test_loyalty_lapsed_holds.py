"""The housekeeping of lapsed points holds: a periodic job deletes them in one statement; reads
ignored them already, so it changes no balance, and running it twice or from two workers at
once deletes each hold once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from loyalty_shop import at
from sqlalchemy import Engine, func, select
from test_loyalty_concurrency import all_at_once

from core.processes import build_jobs
from core.runtime import Runtime, set_runtime
from core.settings import Settings
from loyalty.holds import drop_lapsed_holds, fetch_held, hold_points
from loyalty.jobs import drop_lapsed_points_holds
from loyalty.points import award_points
from loyalty.tables import points_holds

RESERVED = at("2026-06-01 10:00")


def hold(engine: Engine, program: Any, orders: dict[str, int]) -> None:
    """Each order holds 500 points of m-1, for that many minutes from RESERVED."""
    with engine.begin() as conn:
        award_points(conn, "m-1", 50000, reason="t", idempotency_key="gift",
                     now=at("2026-05-01 10:00"), program=program)  # fmt: skip
        for order, minutes in orders.items():
            hold_points(conn, program, "m-1", 500, order_id=order, total=Decimal("400.00"),
                        now=RESERVED, until=RESERVED + timedelta(minutes=minutes))  # fmt: skip


def held_orders(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(points_holds.c.order_id).order_by("order_id")).scalars())


def test_the_job_deletes_the_lapsed_holds_and_changes_no_balance(
    engine: Engine, program: Any
) -> None:
    hold(engine, program, {"o-1": 5, "o-2": 10, "o-3": 30})
    now = RESERVED + timedelta(minutes=10)
    with engine.connect() as conn:
        before = fetch_held(conn, "m-1", now=now)

    with engine.begin() as conn:
        dropped = drop_lapsed_holds(conn, now=now)
        again = drop_lapsed_holds(conn, now=now)
        after = fetch_held(conn, "m-1", now=now)

    assert (dropped, again) == (2, 0)  # o-2 lapses at the 10th minute itself
    assert held_orders(engine) == ["o-3"]
    assert before == after == 500


def test_the_actor_works_as_of_its_fire_time(
    engine: Engine, program: Any, db_url: str, examples: Path
) -> None:
    settings = Settings(_env_file=None, database_url=db_url, redis_url=None,  # type: ignore[call-arg]
                        program_dir=examples / "program")  # fmt: skip
    set_runtime(Runtime(settings=settings))
    hold(engine, program, {"o-1": 5, "o-2": 20})

    drop_lapsed_points_holds.fn((RESERVED + timedelta(minutes=15)).isoformat())

    assert held_orders(engine) == ["o-2"]


def test_the_job_is_registered_every_quarter_hour_and_not_simulated(
    db_url: str, engine: Engine
) -> None:
    settings = Settings(_env_file=None, database_url=db_url, program_dir="/nonexistent")  # type: ignore[call-arg]
    jobs = {job.id: job for job in build_jobs(Runtime(settings=settings))}

    job = jobs["loyalty.points.drop_lapsed_holds"]
    fire = job.trigger.get_next_fire_time(None, RESERVED + timedelta(minutes=1))

    assert fire == RESERVED + timedelta(minutes=15) and not job.simulated
    assert job.misfire_grace == timedelta(minutes=15)


def test_two_workers_running_it_at_once_delete_each_hold_once(
    pg_engine: Engine, program: Any
) -> None:
    hold(pg_engine, program, {f"o-{i}": 5 for i in range(20)} | {"o-live": 60})

    def run(_: int) -> int:
        with pg_engine.begin() as conn:
            return drop_lapsed_holds(conn, now=RESERVED + timedelta(minutes=30))

    counts = all_at_once(2, run)

    assert sum(counts) == 20
    with pg_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(points_holds)).scalar_one() == 1
