"""Assignment to arms: deterministic, in proportion to the holdout and the weights, and apart
from the global control group (pure, no database)."""

from __future__ import annotations

import math
from collections import Counter
from decimal import Decimal

import pytest

from campaigns.assignment import GLOBAL_CONTROL, HOLDOUT, assign_arm, in_global_control
from campaigns.definitions import Campaign

MEMBERS = [f"m-{n:06d}" for n in range(100_000)]


def campaign(*, salt: str = "", kind: str = "marketing") -> Campaign:
    return Campaign.model_validate(
        {
            "id": "cart-abandonment",
            "name": "Cart",
            "kind": kind,
            "trigger": {"cart_abandoned": {"idle_for": "1h"}},
            "experiment": {
                "holdout": "0.10",
                "salt": salt,
                "variants": {
                    "a": {"weight": 50, "steps": [{"send": {"channel": "push", "template": "t"}}]},
                    "b": {"weight": 30, "steps": [{"send": {"channel": "push", "template": "t"}}]},
                    "c": {"weight": 20, "steps": [{"send": {"channel": "push", "template": "t"}}]},
                },
            },
        }
    )


def within_bounds(count: int, share: float, n: int = len(MEMBERS)) -> bool:
    """Inside five standard deviations of the binomial mean (false alarm odds ~ 1 in 3.5M)."""
    return abs(count - n * share) <= 5 * math.sqrt(n * share * (1 - share))


def test_the_same_member_always_lands_in_the_same_arm() -> None:
    first = [assign_arm(campaign(), m) for m in MEMBERS[:1000]]

    assert first == [assign_arm(campaign(), m) for m in MEMBERS[:1000]]


def test_arms_follow_the_holdout_and_the_weights_over_100000_members() -> None:
    counts = Counter(assign_arm(campaign(), m) for m in MEMBERS)

    assert within_bounds(counts[HOLDOUT], 0.10)
    for arm, share in {"a": 0.45, "b": 0.27, "c": 0.18}.items():
        assert within_bounds(counts[arm], share), (arm, counts)


def test_a_new_salt_draws_a_new_assignment_in_the_same_proportions() -> None:
    salted = [assign_arm(campaign(salt="spring"), m) for m in MEMBERS]
    plain = [assign_arm(campaign(), m) for m in MEMBERS]

    changed = sum(a != b for a, b in zip(salted, plain, strict=True))
    assert within_bounds(Counter(salted)[HOLDOUT], 0.10)
    assert changed > len(MEMBERS) // 2  # independent draws agree about 35% of the time


@pytest.mark.parametrize("share", [Decimal("0.05"), Decimal("0.2")])
def test_the_global_control_group_is_a_stable_share_across_campaigns(share: Decimal) -> None:
    control = [m for m in MEMBERS if in_global_control(m, share)]

    assert within_bounds(len(control), float(share))
    assert {assign_arm(campaign(), m, control=share) for m in control} == {GLOBAL_CONTROL}
    assert {assign_arm(campaign(salt="x"), m, control=share) for m in control} == {GLOBAL_CONTROL}
    transactional = {assign_arm(campaign(kind="transactional"), m, control=share) for m in control}
    assert GLOBAL_CONTROL not in transactional
