"""Redemption: the redeem rules, soonest-expiring lots first, one redemption per order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from loyalty_shop import at
from sqlalchemy import Engine, select

from core.program.program_file import Redeem
from loyalty.errors import InsufficientPoints, OrderAlreadyRedeemed, RedemptionRefused
from loyalty.points import award_points, fetch_points
from loyalty.redemption import check_redemption, redeem_points
from loyalty.tables import points_ledger, points_lots, points_moves

RULES = Redeem(points_per_unit=100, min_points=100, max_order_share=Decimal("0.5"))


@pytest.mark.parametrize(
    ("points", "total", "value"),
    [
        (100, "2.00", "1.00"),
        (150, "828.00", "1.50"),
        (41400, "828.00", "414.00"),
        (199, "100.00", "1.99"),
    ],
)
def test_points_are_worth_one_unit_per_points_per_unit(points: int, total: str, value: str) -> None:
    assert check_redemption(points, Decimal(total), RULES) == Decimal(value)


@pytest.mark.parametrize(
    ("points", "total", "message"),
    [
        (99, "828.00", "below the minimum of 100"),
        (41401, "828.00", "at most 41400 points on this order"),
        (101, "2.00", "more than 50% of the order total 2.00"),
    ],
)
def test_a_redemption_below_the_minimum_or_above_the_order_share_is_refused(
    points: int, total: str, message: str
) -> None:
    with pytest.raises(RedemptionRefused, match=message):
        check_redemption(points, Decimal(total), RULES)


def give(engine: Engine, program: Any, member: str, lots: list[tuple[int, str]]) -> None:
    """Lots of ``points`` awarded at each time (expiring 730 days after)."""
    with engine.begin() as conn:
        for index, (amount, when) in enumerate(lots):
            award_points(
                conn,
                member,
                amount,
                reason="test",
                idempotency_key=f"{member}:{index}",
                now=at(when),
                program=program,
            )


def test_redemption_draws_the_soonest_expiring_lots_first_and_records_them(
    engine: Engine, program: Any
) -> None:
    give(
        engine,
        program,
        "m-1",
        [(300, "2026-03-01 10:00"), (500, "2026-01-01 10:00"), (400, "2026-02-01 10:00")],
    )

    with engine.begin() as conn:
        result = redeem_points(
            conn,
            "m-1",
            700,
            order_id="o-1",
            order_total=Decimal("828.00"),
            now=at("2026-06-01 10:00"),
            program=program,
        )
    with engine.connect() as conn:
        lots = dict(conn.execute(select(points_lots.c.points, points_lots.c.remaining)).all())
        moves = (
            conn.execute(
                select(points_moves.c.points).where(points_moves.c.entry_id == result.entry_id)
            )
            .scalars()
            .all()
        )
        entry = conn.execute(
            select(points_ledger).where(points_ledger.c.id == result.entry_id)
        ).one()

    assert lots == {500: 0, 400: 200, 300: 300}
    assert sorted(moves) == [-500, -200]
    assert (entry.kind, entry.points, entry.order_id, result.value) == (
        "redeem",
        -700,
        "o-1",
        Decimal("14.00"),
    )


def test_pending_and_expired_points_cannot_be_redeemed(engine: Engine, program: Any) -> None:
    give(engine, program, "m-1", [(600, "2024-01-01 10:00"), (450, "2026-05-01 10:00")])

    with (
        pytest.raises(InsufficientPoints, match="has 450 available points, 600"),
        engine.begin() as conn,
    ):
        redeem_points(
            conn,
            "m-1",
            600,
            order_id="o-1",
            order_total=Decimal("828.00"),
            now=at("2026-06-01 10:00"),
            program=program,
        )


def test_an_order_takes_one_redemption_only(engine: Engine, program: Any) -> None:
    give(engine, program, "m-1", [(2000, "2026-05-01 10:00")])
    now = at("2026-06-01 10:00")
    with engine.begin() as conn:
        redeem_points(
            conn, "m-1", 500, order_id="o-1", order_total=Decimal("828"), now=now, program=program
        )

    with (
        pytest.raises(OrderAlreadyRedeemed, match="already redeemed 500 points"),
        engine.begin() as conn,
    ):
        redeem_points(
            conn, "m-1", 600, order_id="o-1", order_total=Decimal("828"), now=now, program=program
        )
    with engine.connect() as conn:
        assert fetch_points(conn, "m-1", now=now).balance == 1500
