"""The daily tier recalculation: downgrades only after the grace period, events, history, chunks."""

from __future__ import annotations

from typing import Any

import pytest
from loyalty_shop import at, ingest_batch, paid, program_with, refunded, replay
from sqlalchemy import Engine, select

from core.events.handlers import unit_of_work
from core.events.tables import events
from loyalty import tier_recalc
from loyalty.tables import member_tiers, tier_history
from loyalty.tier_recalc import MemberRange, RecalcReport, plan_ranges, recalculate_tiers
from loyalty.tiers_store import fetch_tiers


def recalc(
    engine: Engine,
    program: Any,
    when: str,
    *,
    dry_run: bool = False,
    members_in: MemberRange | None = None,
) -> RecalcReport:
    with unit_of_work(engine, now=at(when), program=program) as ctx:
        return recalculate_tiers(
            ctx, as_of=at(when), program=program, dry_run=dry_run, members_in=members_in
        )


def tier(engine: Engine, member: str) -> str:
    with engine.connect() as conn:
        return fetch_tiers(conn, [member], default="leaf")[member]


def engine_events(engine: Engine, kind: str) -> list[tuple[str, str, dict]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(events.c.id, events.c.member_id, events.c.data)
            .where(events.c.type == kind)
            .order_by(events.c.occurred_at)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_a_member_below_their_tier_is_warned_and_moved_down_only_after_the_grace_period(
    engine: Engine, program: Any
) -> None:
    replay(engine, program, paid("m-1", "o-1", "5000.00", "2025-06-01 10:00"))
    assert tier(engine, "m-1") == "bud"

    first = recalc(engine, program, "2026-06-02 03:00")  # the order has left the window
    [(_, member, data)] = engine_events(engine, "tier.downgrade_pending")
    assert [(d.action, d.to_tier) for d in first.decisions] == [("pending", "leaf")]
    assert (member, data["from"], data["to"], data["downgrade_on"]) == (
        "m-1",
        "bud",
        "leaf",
        "2026-08-01",  # 60 days of grace
    )

    assert recalc(engine, program, "2026-07-31 03:00").decisions == []
    assert tier(engine, "m-1") == "bud"

    last = recalc(engine, program, "2026-08-01 03:00")
    assert [(d.action, d.to_tier) for d in last.decisions] == [("down", "leaf")]
    assert tier(engine, "m-1") == "leaf"
    changed = [data for _, _, data in engine_events(engine, "tier.changed")]
    assert [(c["direction"], c["from"], c["to"]) for c in changed] == [
        ("up", "leaf", "bud"),
        ("down", "bud", "leaf"),
    ]


def test_spend_that_recovers_within_the_grace_period_keeps_the_tier(
    engine: Engine, program: Any
) -> None:
    replay(engine, program, paid("m-1", "o-1", "5000.00", "2025-06-01 10:00"))
    recalc(engine, program, "2026-06-02 03:00")

    replay(engine, program, paid("m-1", "o-2", "3000.00", "2026-06-10 10:00"))
    recovered = recalc(engine, program, "2026-06-11 03:00")
    later = recalc(engine, program, "2026-08-01 03:00")

    assert [d.action for d in recovered.decisions] == ["recovered"]
    assert later.decisions == []
    with engine.connect() as conn:
        assert conn.execute(select(member_tiers.c.below_since)).scalar() is None
    assert tier(engine, "m-1") == "bud"


def test_a_refund_lowers_the_spend_but_the_tier_waits_for_the_daily_job_and_the_grace(
    engine: Engine, program: Any
) -> None:
    replay(
        engine,
        program,
        paid("m-1", "o-1", "5000.00", "2026-05-01 10:00"),
        refunded("m-1", "o-1", "2500.00", "2026-05-03 10:00"),
    )
    assert tier(engine, "m-1") == "bud"

    report = recalc(engine, program, "2026-05-04 03:00")

    assert [(d.action, str(d.spend)) for d in report.decisions] == [("pending", "2500.00")]


def test_without_a_grace_period_the_daily_job_moves_members_down_at_once(
    engine: Engine, program: Any
) -> None:
    no_grace = program_with(program, tiers={"downgrade_grace_days": 0})
    replay(
        engine,
        no_grace,
        paid("m-1", "o-1", "6000.00", "2025-06-01 10:00"),
        paid("m-1", "o-2", "4000.00", "2026-01-01 10:00"),
    )

    report = recalc(engine, no_grace, "2026-06-02 03:00")

    assert [(d.action, d.from_tier, d.to_tier) for d in report.decisions] == [
        ("down", "oolong", "bud")
    ]


def test_the_job_moves_up_members_whose_orders_came_in_without_a_program(
    engine: Engine, program: Any
) -> None:
    ingest_batch(engine, None, paid("m-1", "o-1", "9000.00", "2026-05-01 10:00"))

    recalc(engine, program, "2026-05-02 03:00")

    assert tier(engine, "m-1") == "oolong"
    with engine.connect() as conn:
        cause = conn.execute(select(tier_history.c.cause)).scalar()
    assert cause == f"recalc:{at('2026-05-02 03:00').isoformat()}"


def test_a_second_run_writes_nothing(engine: Engine, program: Any) -> None:
    ingest_batch(
        engine,
        None,
        *[paid(f"m-{i}", f"o-{i}", f"{i * 3 - 1}000.00", "2026-05-01 10:00") for i in range(1, 7)],
    )
    recalc(engine, program, "2026-05-02 03:00")
    with engine.connect() as conn:
        before = conn.execute(select(member_tiers).order_by(member_tiers.c.member_id)).all()

    again = recalc(engine, program, "2026-05-03 03:00")

    with engine.connect() as conn:
        after = conn.execute(select(member_tiers).order_by(member_tiers.c.member_id)).all()
    assert again.decisions == [] and before == after
    assert len(before) == 5  # m-1 (2000) stays at the lowest tier and needs no row


def test_a_dry_run_after_editing_thresholds_shows_who_would_move_and_changes_nothing(
    engine: Engine, program: Any
) -> None:
    replay(
        engine,
        program,
        paid("m-1", "o-1", "5000.00", "2026-05-01 10:00"),
        paid("m-2", "o-2", "2500.00", "2026-05-01 10:00"),
    )
    levels = program.program_file.tiers.levels
    cheaper_bud = (levels[0], levels[1].model_copy(update={"min_spend": 2000}), *levels[2:])
    edited = program_with(program, tiers={"levels": cheaper_bud})

    report = recalc(engine, edited, "2026-05-02 03:00", dry_run=True)

    assert [(d.member_id, d.action, d.to_tier) for d in report.decisions] == [("m-2", "up", "bud")]
    assert tier(engine, "m-2") == "leaf"
    assert engine_events(engine, "tier.changed")[-1][1] == "m-1"


def test_ranges_of_members_together_decide_what_one_run_over_everyone_decides(
    engine: Engine, program: Any
) -> None:
    orders = [paid(f"m-{i:02d}", f"o-{i}", f"{i}000.00", "2026-05-01 10:00") for i in range(1, 20)]
    ingest_batch(engine, None, *orders)
    whole = recalc(engine, program, "2026-05-02 03:00", dry_run=True)

    with engine.connect() as conn:
        ranges = plan_ranges(conn, chunks=4)
    parts = [recalc(engine, program, "2026-05-02 03:00", members_in=r) for r in ranges]

    assert len(ranges) == 4 and ranges[0].low is None and ranges[-1].high is None
    assert sorted(d.member_id for p in parts for d in p.decisions) == sorted(
        d.member_id for d in whole.decisions
    )
    assert len(whole.decisions) == 17  # m-03 … m-19 reach bud or above


def test_a_decision_made_before_a_concurrent_upgrade_does_not_overwrite_it(
    engine: Engine, program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay(engine, program, paid("m-1", "o-1", "5000.00", "2025-06-01 10:00"))
    stale = recalc(engine, program, "2026-06-02 03:00", dry_run=True).decisions
    replay(engine, program, paid("m-1", "o-2", "9000.00", "2026-06-02 03:10"))  # → oolong
    monkeypatch.setattr(tier_recalc, "fetch_decisions", lambda *args, **kwargs: stale)

    report = recalc(engine, program, "2026-06-02 03:00")

    assert report.decisions == []  # decided on a row that changed meanwhile: nothing written
    assert tier(engine, "m-1") == "oolong"
    with engine.connect() as conn:
        assert conn.execute(select(member_tiers.c.below_since)).scalar() is None
