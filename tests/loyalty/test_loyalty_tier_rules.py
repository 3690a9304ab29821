"""Tier rules as pure functions: thresholds, net spend over the trailing window, progress."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from loyalty_shop import at

from loyalty.ladder import PaidOrder, Refund, TierLadder, net_spend, progress, upgrade_for
from loyalty.variables import TierChangeFact, TierFacts

WINDOW = timedelta(days=365)


@pytest.mark.parametrize(
    ("spend", "tier"),
    [
        ("0", "leaf"),
        ("2999.99", "leaf"),
        ("3000", "bud"),
        ("7999.99", "bud"),
        ("8000", "oolong"),
        ("20000", "puer"),
        ("999999", "puer"),
    ],
)
def test_the_tier_is_the_highest_threshold_the_spend_reaches(
    program: Any, spend: str, tier: str
) -> None:
    assert TierLadder.from_program(program).for_spend(Decimal(spend)).id == tier


def order(order_id: str, total: str, when: str) -> PaidOrder:
    return PaidOrder(order_id, at(when), Decimal(total))


@pytest.mark.parametrize(
    ("orders", "refunds", "when", "spend"),
    [
        ([order("o1", "100", "2026-01-01 10:00")], [], "2026-06-01 00:00", "100"),
        # the window is (at - 365 days, at]: an order exactly 365 days old has left it
        ([order("o1", "100", "2025-06-01 00:00")], [], "2026-06-01 00:00", "0"),
        ([order("o1", "100", "2025-06-01 00:01")], [], "2026-06-01 00:00", "100"),
        ([order("o1", "100", "2026-06-01 00:01")], [], "2026-06-01 00:00", "0"),  # future
        (
            [order("o1", "100", "2026-01-01 10:00")],
            [Refund("o1", Decimal("30"), at("2026-02-01 10:00"))],
            "2026-06-01 00:00",
            "70",
        ),
        # a refund not yet made does not count
        (
            [order("o1", "100", "2026-01-01 10:00")],
            [Refund("o1", Decimal("30"), at("2026-07-01 10:00"))],
            "2026-06-01 00:00",
            "100",
        ),
        # an order never counts below zero, and a refund of an order outside the window is moot
        (
            [order("o1", "100", "2026-01-01 10:00"), order("o2", "50", "2026-02-01 10:00")],
            [Refund("o1", Decimal("150"), at("2026-02-01 10:00"))],
            "2026-06-01 00:00",
            "50",
        ),
        (
            [order("o1", "100", "2024-01-01 10:00"), order("o2", "50", "2026-02-01 10:00")],
            [Refund("o1", Decimal("100"), at("2026-02-01 10:00"))],
            "2026-06-01 00:00",
            "50",
        ),
    ],
)
def test_qualifying_spend_is_net_paid_over_the_trailing_window(
    orders: list[PaidOrder], refunds: list[Refund], when: str, spend: str
) -> None:
    assert net_spend(orders, refunds, at=at(when), window=WINDOW) == Decimal(spend)


@pytest.mark.parametrize(
    ("tier", "spend", "next_tier", "needed"),
    [
        (None, "0", "bud", "3000"),
        ("bud", "5628", "oolong", "2372"),
        ("bud", "1500", "oolong", "6500"),
        ("puer", "120000", None, None),
    ],
)
def test_progress_says_what_the_next_tier_needs(
    program: Any, tier: str | None, spend: str, next_tier: str | None, needed: str | None
) -> None:
    where = progress(TierLadder.from_program(program), tier, Decimal(spend))

    assert (where.next_level.id if where.next_level else None) == next_tier
    assert where.needed == (Decimal(needed) if needed else None)


@pytest.mark.parametrize(
    ("current", "spend", "expected"),
    [
        (None, "2999", None),
        (None, "3000", "bud"),
        ("bud", "9000", "oolong"),
        ("oolong", "4000", None),
    ],  # a paid order never moves anyone down
)
def test_a_paid_order_moves_up_only_when_a_higher_threshold_is_crossed(
    program: Any, current: str | None, spend: str, expected: str | None
) -> None:
    change = upgrade_for(
        TierLadder.from_program(program),
        "m-1",
        current,
        Decimal(spend),
        at=at("2026-06-01 10:00"),
        cause="order:o-1",
    )

    assert (change.to_tier if change else None) == expected


def test_the_tier_held_at_a_past_time_comes_from_the_history(program: Any) -> None:
    snapshot = TierFacts(
        TierLadder.from_program(program),
        tier_id="oolong",
        changes=(
            TierChangeFact(at("2026-03-01 10:00"), "leaf", "recalc"),
            TierChangeFact(at("2026-05-01 10:00"), "bud", "order:o-2"),
        ),
    )

    assert snapshot.tier_at(at("2026-02-01 00:00")) == "leaf"
    assert snapshot.tier_at(at("2026-04-01 00:00")) == "bud"
    assert snapshot.tier_at(at("2026-06-01 00:00")) == "oolong"
    # The order being judged is judged without the upgrade it caused.
    assert snapshot.tier_at(at("2026-06-01 00:00"), exclude_order="o-2") == "bud"
