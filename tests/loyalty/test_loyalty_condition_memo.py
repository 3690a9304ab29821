"""Conditions that read only ``now`` are evaluated once per value of ``now`` in a batch."""

from __future__ import annotations

from typing import Any

from core.expressions import compile_expression
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


def test_a_condition_on_the_member_is_evaluated_every_time() -> None:
    memo, loyal = ConditionMemo(), CountingExpression("member.paid_orders > 1 && now.month == 4")

    results = [
        memo.holds(loyal, {"now": APRIL, "member": {"paid_orders": n}}) for n in (1, 2, 1, 2)
    ]

    assert results == [False, True, False, True]
    assert loyal.calls == 4
