"""The benchmark data generator: reproducible, scalable, and every event it makes is valid."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.events.validation import parse_line, validate_event

# benchmarks/ is a top-level folder of the repository, not an installed package.
REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks.datagen import (  # noqa: E402
    DEFAULT_END,
    MEMBERS_PER_SCALE,
    ORDERS_PER_SCALE,
    Dataset,
    event_rows,
    generate,
    order_rows,
    to_jsonl,
)

SCALE = 0.02  # 200 members, 2,000 orders


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SCALE, seed=7)


def cents(amount: str) -> int:
    value = Decimal(amount)
    assert value.as_tuple().exponent == -2, f"{amount!r} does not have exactly 2 decimals"
    return int(value * 100)


def test_the_same_seed_gives_the_same_events_and_another_seed_different_ones() -> None:
    first = list(to_jsonl(generate(0.005, seed=3).events()))
    again = list(to_jsonl(generate(0.005, seed=3).events()))
    other = list(to_jsonl(generate(0.005, seed=4).events()))

    assert first == again
    assert first != other


@pytest.mark.parametrize("scale", [0.005, 0.02])
def test_members_and_orders_scale_linearly(scale: float) -> None:
    data = generate(scale, seed=1)

    assert len(data.members) == round(MEMBERS_PER_SCALE * scale)
    assert len(data.orders) == round(ORDERS_PER_SCALE * scale)
    assert 0.02 * len(data.orders) < len(data.refunds) < 0.08 * len(data.orders)
    assert 0.3 * len(data.orders) < len(data.carts) < 0.7 * len(data.orders)


def test_a_scale_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="scale must be > 0"):
        generate(0, seed=1)


def test_every_event_validates_through_the_intake_validation(dataset: Dataset) -> None:
    kinds: Counter[str] = Counter()
    for line in to_jsonl(dataset.events()):
        kinds[validate_event(parse_line(line)).type] += 1

    assert kinds == {
        "member.registered": len(dataset.members),
        "order.paid": len(dataset.orders),
        "order.refunded": len(dataset.refunds),
        "cart.updated": len(dataset.carts),
    }


def test_event_ids_and_order_ids_are_unique(dataset: Dataset) -> None:
    ids = [event["id"] for event in dataset.events()]
    order_ids = [order["data"]["order_id"] for order in dataset.orders]

    assert len(set(ids)) == len(ids) == len(dataset)
    assert len(set(order_ids)) == len(order_ids)


def test_order_totals_are_the_sum_of_their_items_with_two_decimals(dataset: Dataset) -> None:
    for order in dataset.orders:
        data = order["data"]
        items_sum = sum(cents(item["price"]) * item["qty"] for item in data["items"])

        assert 1 <= len(data["items"]) <= 5
        assert cents(data["total"]) == items_sum
    for cart in dataset.carts:
        items_sum = sum(cents(item["price"]) * item["qty"] for item in cart["data"]["items"])
        assert cents(cart["data"]["total"]) == items_sum


def test_money_is_never_a_float_in_the_json(dataset: Dataset) -> None:
    def no_floats(value: Any) -> None:
        assert not isinstance(value, float)

    for line in to_jsonl(dataset.events()):
        json.loads(line, parse_float=no_floats)


def test_refunds_are_full_or_partial_and_never_exceed_their_order(dataset: Dataset) -> None:
    totals = {order["data"]["order_id"]: cents(order["data"]["total"]) for order in dataset.orders}
    paid_at = {order["data"]["order_id"]: order["occurred_at"] for order in dataset.orders}
    kinds: Counter[str] = Counter()
    for refund in dataset.refunds:
        order_id, amount = refund["data"]["order_id"], cents(refund["data"]["amount"])
        assert 0 < amount <= totals[order_id]
        assert refund["occurred_at"] >= paid_at[order_id]
        kinds["full" if amount == totals[order_id] else "partial"] += 1

    assert kinds["full"] > 0 and kinds["partial"] > 0


def test_times_are_aware_and_orders_fall_in_the_two_years_before_the_end(
    dataset: Dataset,
) -> None:
    registered = {m["member_id"]: datetime.fromisoformat(m["occurred_at"]) for m in dataset.members}
    for event in dataset.events():
        assert datetime.fromisoformat(event["occurred_at"]).utcoffset() is not None
    for order in dataset.orders:
        paid = datetime.fromisoformat(order["occurred_at"])
        assert DEFAULT_END - timedelta(days=731) <= paid <= DEFAULT_END
        assert paid >= registered[order["member_id"]]


def test_events_are_in_time_order(dataset: Dataset) -> None:
    times = [datetime.fromisoformat(event["occurred_at"]) for event in dataset.events()]

    assert times == sorted(times)


def test_profiles_look_like_a_chinese_shop_with_some_foreign_members(dataset: Dataset) -> None:
    profiles = [member["data"] for member in dataset.members]
    zones = Counter(profile["timezone"] for profile in profiles)
    codes = {profile["referral_code"] for profile in profiles}
    referred = [profile["referred_by"] for profile in profiles if "referred_by" in profile]

    assert zones.most_common(1)[0][0] == "Asia/Shanghai" and len(zones) > 1
    assert {profile["locale"] for profile in profiles} == {"zh-CN", "en"}
    assert len(codes) == len(profiles)
    assert referred and set(referred) <= codes
    assert all(set(profile["consents"]) == {"email", "sms", "push"} for profile in profiles)


def test_orders_use_gift_cards_coupons_and_carts(dataset: Dataset) -> None:
    orders = [order["data"] for order in dataset.orders]
    categories = {item["category"] for order in orders for item in order["items"]}
    cart_ids = {cart["data"]["cart_id"] for cart in dataset.carts}

    assert "gift_card" in categories
    assert any(order["coupon_codes"] for order in orders)
    assert {order["cart_id"] for order in orders if "cart_id" in order} < cart_ids


def test_raw_rows_carry_the_same_values_typed_for_the_database(dataset: Dataset) -> None:
    received_at = DEFAULT_END
    events = list(event_rows(dataset.orders, source="bench", received_at=received_at))
    orders = list(order_rows(dataset.events()))

    assert len(events) == len(orders) == len(dataset.orders)
    assert all(row["occurred_at"].utcoffset() == timedelta(0) for row in events)
    first = orders[0]
    assert first["event_id"] == dataset.orders[0]["id"]
    assert first["total"] == Decimal(dataset.orders[0]["data"]["total"])
    assert first["paid_at"] == datetime.fromisoformat(dataset.orders[0]["occurred_at"])
