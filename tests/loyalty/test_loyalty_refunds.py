"""Refunds take back earned points in proportion and return redeemed points to their lots."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from loyalty_shop import at, ingest_batch, paid, refunded, replay
from sqlalchemy import Engine, select

from loyalty.points import award_points, fetch_points
from loyalty.redemption import redeem_points
from loyalty.refunds import OrderPoints
from loyalty.tables import points_ledger, points_lots


def balance(engine: Engine, member: str, when: str) -> tuple[int, int, int]:
    with engine.connect() as conn:
        view = fetch_points(conn, member, now=at(when))
    return view.balance, view.pending, view.debt


def reversals(engine: Engine, member: str) -> list[tuple[str, int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(points_ledger.c.rule_id, points_ledger.c.points, points_ledger.c.debt)
            .where(points_ledger.c.member_id == member, points_ledger.c.kind == "reverse")
            .order_by(points_ledger.c.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("earned", "total", "refunds", "keep"),
    [
        (828, "828.00", ["828.00"], 0),
        (828, "828.00", ["228.00"], 600),
        (993, "828.00", ["100.00"], 873),  # 993 × 728 / 828 = 873.08
        (993, "828.00", ["100.00", "100.00"], 753),
        (100, "0.03", ["0.01"], 66),
        (828, "828.00", ["900.00"], 0),
    ],  # refunds beyond the total take everything, no more
)
def test_a_member_keeps_the_earned_points_in_proportion_to_what_was_not_refunded(
    earned: int, total: str, refunds: list[str], keep: int
) -> None:
    cents = int(Decimal(total) * 100)
    refunded_cents = min(cents, sum(int(Decimal(r) * 100) for r in refunds))
    state = OrderPoints("o", "m", cents, refunded_cents, earned, (), 0, (), 0, (), 0)

    assert state.keep() == keep
    assert state.to_take_back() == earned - keep


def test_a_partial_refund_before_the_points_are_used_takes_back_its_share(
    engine: Engine, program: Any
) -> None:
    replay(
        engine,
        program,
        paid("m-1", "o-1", "828.00", "2026-06-01 10:00"),
        refunded("m-1", "o-1", "228.00", "2026-06-03 10:00"),
    )

    assert balance(engine, "m-1", "2026-06-05 10:00") == (0, 600, 0)
    assert reversals(engine, "m-1") == [("refund", -228, 0)]


def test_a_full_refund_takes_back_everything_the_order_earned(engine: Engine, program: Any) -> None:
    replay(
        engine,
        program,
        paid("m-1", "o-1", "828.00", "2026-06-01 10:00"),
        refunded("m-1", "o-1", "500.00", "2026-06-03 10:00"),
        refunded("m-1", "o-1", "328.00", "2026-06-04 10:00"),
    )

    assert balance(engine, "m-1", "2026-06-20 10:00") == (0, 0, 0)
    assert [pts for _, pts, _ in reversals(engine, "m-1")] == [-500, -328]


def test_points_already_spent_come_from_other_lots_then_become_a_debt_later_earnings_pay(
    engine: Engine, program: Any
) -> None:
    replay(engine, program, paid("m-1", "o-1", "1000.00", "2026-06-01 10:00"))
    with engine.begin() as conn:
        award_points(
            conn,
            "m-1",
            100,
            reason="goodwill",
            idempotency_key="g-1",
            now=at("2026-06-17 10:00"),
            program=program,
        )
        redeem_points(
            conn,
            "m-1",
            1000,
            order_id="o-2",
            order_total=Decimal("5000"),
            now=at("2026-06-18 10:00"),
            program=program,
        )

    replay(engine, program, refunded("m-1", "o-1", "1000.00", "2026-06-20 10:00"))
    assert balance(engine, "m-1", "2026-06-20 10:00") == (0, 0, 900)
    assert reversals(engine, "m-1") == [("refund", -100, 900)]

    replay(engine, program, paid("m-1", "o-3", "1500.00", "2026-07-01 10:00"))
    assert balance(engine, "m-1", "2026-07-17 10:00") == (600, 0, 0)
    assert reversals(engine, "m-1")[-1] == ("debt-repayment", -900, -900)


def test_points_an_order_redeemed_go_back_to_their_lots_in_proportion_to_the_refund(
    engine: Engine, program: Any
) -> None:
    with engine.begin() as conn:
        for key, (amount, when) in enumerate(
            [(300, "2026-01-01 10:00"), (500, "2026-02-01 10:00")]
        ):
            award_points(
                conn,
                "m-1",
                amount,
                reason="t",
                idempotency_key=str(key),
                now=at(when),
                program=program,
            )
        redeem_points(
            conn,
            "m-1",
            600,
            order_id="o-1",
            order_total=Decimal("1000.00"),
            now=at("2026-06-01 09:00"),
            program=program,
        )
    ingest_batch(
        engine, program, paid("m-1", "o-1", "1000.00", "2026-06-01 10:00", points_redeemed=600)
    )

    replay(engine, program, refunded("m-1", "o-1", "500.00", "2026-06-03 10:00"))
    with engine.connect() as conn:
        lots = dict(conn.execute(select(points_lots.c.points, points_lots.c.remaining)).all())
    # 300 of the 600 come back, to the latest-expiring lot first; half the 1000 earned is kept
    assert lots == {300: 0, 500: 500, 1000: 500}

    replay(engine, program, refunded("m-1", "o-1", "500.00", "2026-06-04 10:00"))
    with engine.connect() as conn:
        lots = dict(conn.execute(select(points_lots.c.points, points_lots.c.remaining)).all())
    assert lots == {300: 300, 500: 500, 1000: 0}


def test_redeemed_points_whose_lot_expired_meanwhile_are_not_restored(
    engine: Engine, program: Any
) -> None:
    with engine.begin() as conn:
        award_points(
            conn,
            "m-1",
            600,
            reason="t",
            idempotency_key="old",
            now=at("2024-06-01 10:00"),  # expires at the end of 2026-06-01
            program=program,
        )
        redeem_points(
            conn,
            "m-1",
            600,
            order_id="o-1",
            order_total=Decimal("1000.00"),
            now=at("2026-05-30 10:00"),
            program=program,
        )
    replay(
        engine,
        program,
        paid("m-1", "o-1", "1000.00", "2026-05-30 11:00"),
        refunded("m-1", "o-1", "1000.00", "2026-06-05 10:00"),
    )

    with engine.connect() as conn:
        restores = conn.execute(
            select(points_ledger.c.id).where(points_ledger.c.rule_id == "refund-restore")
        ).all()
    assert restores == []
    assert balance(engine, "m-1", "2026-06-05 10:00") == (0, 0, 0)


def test_a_refund_that_arrives_before_its_order_is_applied_when_the_order_arrives(
    engine: Engine, program: Any
) -> None:
    replay(engine, program, refunded("m-1", "o-1", "414.00", "2026-06-03 10:00"))
    replay(engine, program, paid("m-1", "o-1", "828.00", "2026-06-01 10:00"))

    assert balance(engine, "m-1", "2026-06-17 10:00") == (414, 0, 0)
