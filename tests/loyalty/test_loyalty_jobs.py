"""The daily jobs as the scheduler and ``tick`` run them: times from program.yaml, work done by
the actors for each fire time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loyalty_shop import at, paid, registered, replay
from sqlalchemy import Engine, select

import worker
from core.events.tables import events
from core.runtime import Runtime, set_runtime
from core.settings import Settings
from core.ticking import tick
from loyalty.jobs import loyalty_jobs
from loyalty.tables import points_ledger, referrals, tier_history


@pytest.fixture
def runtime(db_url: str, engine: Engine, examples: Path) -> Iterator[Runtime]:
    settings = Settings(
        _env_file=None,
        database_url=db_url,
        redis_url=None,  # type: ignore[call-arg]
        program_dir=examples / "program",
    )
    worker.setup(settings)
    runtime = Runtime(settings=settings)
    set_runtime(runtime)
    yield runtime


def test_jobs_fire_at_the_programs_times_in_its_time_zone(runtime: Runtime) -> None:
    jobs = {job.id: job for job in loyalty_jobs(runtime)}

    fire = {
        job_id: job.trigger.get_next_fire_time(None, at("2026-06-01 12:00"))
        for job_id, job in jobs.items()
    }

    assert fire == {
        "loyalty.tiers.recalculate": at("2026-06-02 03:00"),
        "loyalty.points.expire": at("2026-06-02 00:00"),
        "loyalty.referrals.settle": at("2026-06-02 00:30"),
    }


def test_no_program_means_no_loyalty_jobs(db_url: str, engine: Engine) -> None:
    settings = Settings(_env_file=None, database_url=db_url, program_dir="/nonexistent")  # type: ignore[call-arg]

    assert loyalty_jobs(Runtime(settings=settings)) == []


def test_ticking_through_the_days_downgrades_expires_and_settles(
    runtime: Runtime, engine: Engine
) -> None:
    program: Any = runtime.program
    replay(
        engine,
        program,
        registered("m-lin", "2024-05-20 10:00", referral_code="LINTEA"),
        paid("m-lin", "o-0", "1000.00", "2024-06-01 10:00"),
        paid("m-lin", "o-1", "5000.00", "2025-06-01 10:00"),
        registered("m-mei", "2026-05-25 10:00", referred_by="LINTEA"),
        paid("m-mei", "o-2", "300.00", "2026-05-26 10:00"),
    )

    report = tick(
        runtime, loyalty_jobs(runtime), start=at("2026-05-26 10:00"), until=at("2026-08-02 00:00")
    )

    assert len(report.fired) == 67 * 3 + 1  # 05-27 … 08-01, then expiry at 08-02 00:00
    with engine.connect() as conn:
        moves = conn.execute(
            select(tier_history.c.to_tier, tier_history.c.changed_at).order_by(tier_history.c.id)
        ).all()
        expired = (
            conn.execute(select(points_ledger.c.points).where(points_ledger.c.kind == "expire"))
            .scalars()
            .all()
        )
        referral = conn.execute(select(referrals.c.status)).scalar()
        kinds = (
            conn.execute(
                select(events.c.type)
                .where(events.c.source == "engine")
                .order_by(events.c.occurred_at)
            )
            .scalars()
            .all()
        )
    assert [tuple(m) for m in moves] == [
        ("bud", at("2025-06-01 10:00")),
        ("leaf", at("2026-08-01 03:00")),
    ]
    # 730 days after they became available: the welcome (2024-05-20) and o-0's lot (06-16)
    assert expired == [-200, -1000]
    assert referral == "settled"
    # up at o-1; warned 06-02 (o-1 left the window); mei's referral settles 06-11 (15 days
    # after 05-26 10:00, at the 00:30 run); down 60 days after the warning
    assert kinds == ["tier.changed", "tier.downgrade_pending", "referral.qualified", "tier.changed"]
