"""Discounts: exact money, half-up cents, caps, the highest ladder step, never above the basket."""

from __future__ import annotations

from decimal import Decimal

import pytest

from coupons.definitions import Discount
from coupons.discounts import DiscountRule, calculate_discount


def rule(**discount: object) -> DiscountRule:
    return DiscountRule.of(Discount.model_validate(discount))


LADDER = {"ladder": [{"min_total": 300, "off": 50}, {"min_total": 500, "off": 100}]}


@pytest.mark.parametrize(
    ("discount", "amount", "shipping", "expected"),
    [
        ({"amount_off": 20}, "100.00", "0.00", "20.00"),
        ({"amount_off": 20}, "15.00", "0.00", "15.00"),  # never more than the basket
        ({"percent_off": 10}, "155.55", "0.00", "15.56"),  # 15.555 rounds half up
        ({"percent_off": 10}, "155.54", "0.00", "15.55"),  # 15.554 rounds down
        ({"percent_off": 10, "max_off": 50}, "1000.00", "0.00", "50.00"),  # capped
        ({"percent_off": 15, "max_off": 200}, "1000.00", "0.00", "150.00"),
        (LADDER, "299.99", "0.00", "0.00"),
        (LADDER, "300.00", "0.00", "50.00"),
        (LADDER, "499.99", "0.00", "50.00"),
        (LADDER, "800.00", "0.00", "100.00"),  # the highest step reached
        ({"free_shipping": True}, "100.00", "12.00", "12.00"),
        ({"free_shipping": True}, "100.00", "0.00", "0.00"),
    ],
)
def test_the_discount_on_the_eligible_amount(
    discount: dict[str, object], amount: str, shipping: str, expected: str
) -> None:
    off = calculate_discount(rule(**discount), Decimal(amount), shipping=Decimal(shipping))

    assert off == Decimal(expected)
    assert off.as_tuple().exponent == -2
