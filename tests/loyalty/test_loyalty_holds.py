"""What a cart may redeem, from the usable balance, what other checkouts hold and the redeem
rules (pure), and why a number of points cannot be held."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.program.program_file import Redeem
from loyalty.holds import redeemable_points

# 50 points are worth 1.00; at least 500 a redemption; points pay at most 30% of an order.
RULES = Redeem(points_per_unit=50, min_points=500, max_order_share=Decimal("0.3"))


@pytest.mark.parametrize(
    ("balance", "held", "total", "points", "value"),
    [
        (3400, 0, "420.00", 3400, "68.00"),  # the balance is the limit
        (9000, 0, "420.00", 6300, "126.00"),  # 30% of 420.00 = 126.00 = 6300 points
        (9000, 5000, "420.00", 4000, "80.00"),  # what another checkout holds does not count
        (600, 200, "420.00", 0, "0.00"),  # 400 left is below the minimum of 500
        (3400, 0, "10.00", 0, "0.00"),  # 30% of 10.00 is 150 points, below the minimum
        (3400, 0, "0.00", 0, "0.00"),  # nothing to pay
        (3400, 4000, "420.00", 0, "0.00"),  # held beyond the balance: none, never negative
        (3401, 0, "420.00", 3401, "68.02"),  # the value is rounded down to the cent
    ],
)
def test_a_cart_may_redeem_the_usable_points_not_held_within_its_share(
    balance: int, held: int, total: str, points: int, value: str
) -> None:
    redeemable = redeemable_points(balance=balance, held=held, total=Decimal(total), rules=RULES)

    assert (redeemable.points, redeemable.value) == (points, Decimal(value))


@pytest.mark.parametrize(
    ("asked", "reason"),
    [
        (499, "points.below_minimum"),
        (500, None),
        (4000, None),
        (4001, "points.insufficient"),
        (6301, "points.over_order_share"),
    ],
)
def test_the_refusal_names_the_rule_the_points_break(asked: int, reason: str | None) -> None:
    redeemable = redeemable_points(balance=9000, held=5000, total=Decimal("420.00"), rules=RULES)

    assert redeemable.refusal(asked) == reason
