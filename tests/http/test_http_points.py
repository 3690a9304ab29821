"""Points over HTTP against a real uvicorn on loopback: an operator's adjustment (admin only)
returns the new balance; the points a reservation holds are not redeemable by another checkout
until it is released, lapses or its order redeems them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from checkout_shop import BALANCE, MEMBER, NOW, Shop, serve_shop
from sqlalchemy import Engine

from core.clock import FixedClock, set_clock
from loyalty.redemption import redeem_points

ADJUST = f"/v1/members/{MEMBER}/points/adjustments"
PROBLEM = "application/problem+json"


@pytest.fixture
def shop(db_url: str, engine: Engine, examples: Path, tmp_path: Path) -> Iterator[Shop]:
    yield from serve_shop(db_url, examples, tmp_path)


def problem(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = answer.json()
    return body


def points_on_cart(shop: Shop) -> dict[str, Any]:
    points: dict[str, Any] = shop.validate().json()["points"]
    return points


def test_an_adjustment_adds_or_takes_points_and_returns_the_balance(shop: Shop) -> None:
    added = shop.post(ADJUST, {"points": 500, "reason": "late parcel"}, scope="admin")
    taken = shop.post(ADJUST, {"points": -400, "reason": "duplicate award"}, scope="admin")

    assert added.status_code == taken.status_code == 201
    assert (added.json()["balance"], added.json()["duplicate"]) == (BALANCE + 500, False)
    assert taken.json()["balance"] == BALANCE + 100
    assert taken.json()["entry_id"] > added.json()["entry_id"]
    assert points_on_cart(shop)["balance"] == BALANCE + 100


def test_taking_more_than_the_usable_points_is_a_409_and_takes_nothing(shop: Shop) -> None:
    answer = shop.post(ADJUST, {"points": -(BALANCE + 1), "reason": "typo"}, scope="admin")

    assert problem(answer, 409)["code"] == "insufficient_points"
    assert points_on_cart(shop)["balance"] == BALANCE


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"points": 0, "reason": "nothing"}, "points"),
        ({"points": 10**10, "reason": "too many"}, "points"),
        ({"points": 5, "reason": "   "}, "reason"),
        ({"points": 5, "reason": "late\x00parcel"}, "reason"),
        ({"points": 5}, "reason"),
    ],
)
def test_a_bad_adjustment_is_a_422_naming_the_field(
    shop: Shop, body: dict[str, Any], field: str
) -> None:
    answer = shop.post(ADJUST, body, scope="admin")

    assert field in [error["field"] for error in problem(answer, 422)["errors"]]


def test_adjusting_an_unknown_member_is_a_404_problem(shop: Shop) -> None:
    answer = shop.post(
        "/v1/members/m-nobody/points/adjustments", {"points": 5, "reason": "x"}, scope="admin"
    )

    assert problem(answer, 404)["code"] == "member_not_found"


def test_adjustments_are_for_admin_keys_only(shop: Shop) -> None:
    body = {"points": 5, "reason": "x"}

    assert problem(shop.post(ADJUST, body, scope=None), 401)["code"] == "unauthenticated"
    assert problem(shop.post(ADJUST, body, scope="checkout"), 403)["code"] == "forbidden"
    assert problem(shop.post(ADJUST, body, scope="events"), 403)["code"] == "forbidden"
    assert points_on_cart(shop)["balance"] == BALANCE


def test_held_points_are_not_redeemable_by_another_checkout_until_released(shop: Shop) -> None:
    held = shop.reserve("o-1", points=3000).json()

    while_held = points_on_cart(shop)
    second = shop.reserve("o-2", points=500)
    shop.post(f"/v1/checkout/reservations/{held['reservation_id']}/release")

    assert (while_held["held"], while_held["available"], while_held["redeemable"]) == (
        3000,
        400,
        0,  # 400 is below the minimum of 500
    )
    assert second.json()["reasons"] == ["points.insufficient"]
    assert points_on_cart(shop)["redeemable"] == BALANCE


def test_a_hold_counts_no_more_once_it_lapses(shop: Shop) -> None:
    shop.reserve("o-1", points=3000, ttl_seconds=60)

    set_clock(FixedClock(NOW + timedelta(seconds=61)))

    assert points_on_cart(shop)["held"] == 0
    assert shop.reserve("o-2", points=3000).status_code == 201


def test_a_hold_counts_no_more_once_its_order_redeems_the_points(shop: Shop) -> None:
    shop.reserve("o-1", points=3000)

    with shop.runtime.engine.begin() as conn:
        redeem_points(conn, MEMBER, 3000, order_id="o-1", order_total=Decimal("500.00"),
                      now=NOW, program=shop.runtime.program)  # fmt: skip

    after = points_on_cart(shop)
    assert (after["balance"], after["held"]) == (BALANCE - 3000, 0)
