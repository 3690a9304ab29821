"""A batch evaluates a condition once per value of the fields it reads, when those are kept."""

from __future__ import annotations

from typing import Any

import pytest

from core.expressions import ExpressionError, compile_expression
from loyalty.earning import ConditionMemo

APRIL = {"year": 2026, "month": 4, "day": 1, "weekday": 3, "hour": 10}
MAY = {**APRIL, "month": 5}


class CountingExpression:
    """An Expression that counts its evaluations."""

    def __init__(self, source: str) -> None:
        self.inner = compile_expression(source)
        self.source, self.program, self.calls = source, self.inner.program, 0

    def is_true(self, variables: dict[str, Any]) -> bool:
        self.calls += 1
        return self.inner.is_true(variables)


def test_a_now_only_condition_is_evaluated_once_per_value_of_now() -> None:
    memo, spring = ConditionMemo(), CountingExpression("now.month == 4")

    results = [memo.holds(spring, {"now": now}) for now in (APRIL, APRIL, MAY, APRIL, MAY)]

    assert results == [True, True, False, True, False]
    assert spring.calls == 2


def test_a_condition_on_member_fields_is_evaluated_once_per_value_of_those_fields() -> None:
    memo, loyal = ConditionMemo(), CountingExpression("member.paid_orders > 1 && now.month == 4")
    other_day = {**APRIL, "day": 2, "hour": 23}  # fields the condition does not read

    results = [
        memo.holds(loyal, {"now": now, "member": {"paid_orders": n, "locale": "en"}})
        for n, now in ((1, APRIL), (2, APRIL), (1, other_day), (2, other_day), (2, MAY))
    ]

    assert results == [False, True, False, True, False]
    assert loyal.calls == 3


@pytest.mark.parametrize(
    ("source", "variables"),
    [
        ("member.net_spend > 100.0", {"member": {"net_spend": 150.5}}),  # a double
        ("'a' in member.categories", {"member": {"categories": ["a"]}}),  # a list
        ("member.consents.email", {"member": {"consents": {"email": True}}}),  # a map
        ("size(member) > 0", {"member": {"tier": "gold"}}),  # the variable whole
        ("order.items.exists(i, i.qty > 1)", {"order": {"items": [{"qty": 2}]}}),  # a macro
    ],
)
def test_a_condition_on_values_not_kept_is_evaluated_every_time(
    source: str, variables: dict[str, Any]
) -> None:
    memo, condition = ConditionMemo(), CountingExpression(source)

    results = [memo.holds(condition, variables) for _ in range(3)]

    assert results == [True] * 3
    assert condition.calls == 3


def test_values_equal_in_python_but_not_in_cel_are_kept_apart() -> None:
    memo, flag = ConditionMemo(), CountingExpression("member.x == true")

    results = [memo.holds(flag, {"member": {"x": x}}) for x in (True, 1, True, 1)]

    assert results[0] is True and results[2] is True
    assert flag.calls == 2  # 1 is an int: its own key, whatever CEL makes of int == bool


def test_a_condition_missing_a_field_raises_every_time() -> None:
    memo, condition = ConditionMemo(), CountingExpression("member.tier == 'gold'")

    for _ in range(2):
        with pytest.raises(ExpressionError):
            memo.holds(condition, {"member": {}})

    assert condition.calls == 2


def test_a_round_purchase_explains_itself_without_an_exponent() -> None:
    from decimal import Decimal

    from loyalty.earning import purchase_points

    rule = type("Rule", (), {"per_amount": 1, "tier_multiplier": False})()
    level = type("Level", (), {"id": "leaf", "multiplier": Decimal(1)})()

    points, details = purchase_points(Decimal("8800.00"), rule, level, [])  # type: ignore[arg-type]

    assert (points, details["exact"]) == (8800, "8800")
