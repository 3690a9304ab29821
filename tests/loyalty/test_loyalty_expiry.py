"""Expiry: due lots expire once, a rerun the same day touches nothing, reminders find them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from loyalty_shop import at
from sqlalchemy import Engine, select

from loyalty.expiry import expire_points, fetch_expiring_points
from loyalty.points import award_points, fetch_points
from loyalty.redemption import redeem_points
from loyalty.tables import points_ledger, points_lots


def give(engine: Engine, program: Any, lots: list[tuple[str, int, str]]) -> None:
    with engine.begin() as conn:
        for index, (member, amount, when) in enumerate(lots):
            award_points(
                conn,
                member,
                amount,
                reason="t",
                idempotency_key=f"k{index}",
                now=at(when),
                program=program,
            )


def run_expiry(engine: Engine, when: str) -> Any:
    with engine.begin() as conn:
        return expire_points(conn, as_of=at(when), now=at(when))


def test_lots_expire_at_the_end_of_the_business_day_730_days_after_they_became_available(
    engine: Engine, program: Any
) -> None:
    give(engine, program, [("m-1", 100, "2024-06-01 10:00"), ("m-1", 50, "2024-06-02 10:00")])

    with engine.connect() as conn:
        before = fetch_points(conn, "m-1", now=at("2026-06-01 23:59")).balance
        after = fetch_points(conn, "m-1", now=at("2026-06-02 00:00")).balance
    report = run_expiry(engine, "2026-06-02 00:00")

    assert (before, after) == (150, 50)
    assert (report.lots, report.points, report.members) == (1, 100, 1)


def test_expiry_writes_one_entry_per_member_and_only_what_is_left_in_each_lot(
    engine: Engine, program: Any
) -> None:
    give(
        engine,
        program,
        [
            ("m-1", 600, "2024-06-01 10:00"),
            ("m-1", 200, "2024-06-01 11:00"),
            ("m-2", 100, "2024-06-01 12:00"),
            ("m-2", 100, "2025-01-01 12:00"),
        ],
    )
    with engine.begin() as conn:
        redeem_points(
            conn,
            "m-1",
            500,
            order_id="o-1",
            order_total=Decimal("1000"),
            now=at("2026-05-01 10:00"),
            program=program,
        )

    report = run_expiry(engine, "2026-06-02 00:00")

    with engine.connect() as conn:
        entries = dict(
            conn.execute(
                select(points_ledger.c.member_id, points_ledger.c.points).where(
                    points_ledger.c.kind == "expire"
                )
            ).all()
        )
    assert entries == {"m-1": -300, "m-2": -100}
    assert (report.lots, report.points, report.members) == (3, 400, 2)


def test_a_second_run_the_same_day_touches_nothing(engine: Engine, program: Any) -> None:
    give(engine, program, [("m-1", 100, "2024-06-01 10:00")])
    run_expiry(engine, "2026-06-02 00:00")

    again = run_expiry(engine, "2026-06-02 00:00")
    earlier = run_expiry(engine, "2026-06-01 00:00")

    assert (again.lots, again.points, earlier.lots) == (0, 0, 0)
    with engine.connect() as conn:
        assert (
            len(
                conn.execute(
                    select(points_ledger.c.id).where(points_ledger.c.kind == "expire")
                ).all()
            )
            == 1
        )


def test_a_run_after_missed_days_expires_everything_due_since_the_last_run(
    engine: Engine, program: Any
) -> None:
    give(
        engine,
        program,
        [
            ("m-1", 100, "2024-06-01 10:00"),
            ("m-1", 100, "2024-06-05 10:00"),
            ("m-1", 100, "2024-06-20 10:00"),
        ],
    )
    run_expiry(engine, "2026-06-02 00:00")

    report = run_expiry(engine, "2026-06-10 00:00")

    assert (report.lots, report.points) == (1, 100)
    with engine.connect() as conn:
        left = conn.execute(select(points_lots.c.remaining).order_by(points_lots.c.id)).scalars()
        assert list(left) == [0, 0, 100]


def test_members_with_points_expiring_within_n_days_are_found_for_reminders(
    engine: Engine, program: Any
) -> None:
    give(
        engine,
        program,
        [
            ("m-1", 300, "2024-06-10 10:00"),
            ("m-1", 200, "2024-06-20 10:00"),
            ("m-2", 50, "2024-06-10 10:00"),
            ("m-3", 500, "2024-09-01 10:00"),
        ],
    )

    with engine.connect() as conn:
        found = fetch_expiring_points(
            conn,
            now=at("2026-06-01 10:00"),
            within=timedelta(days=30),
            min_points=100,
            program=program,
        )

    assert [(f.member_id, f.points, f.value) for f in found] == [("m-1", 500, Decimal("10.00"))]
    assert found[0].first_expires_at == at("2026-06-11 00:00")
