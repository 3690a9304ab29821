"""Checkout over HTTP against a real uvicorn on loopback: validate (every wallet coupon and
entered code with reasons in the asked language, the best mix, the points a cart may take),
reserve and release, refusals as 409 problems, issuing coupons, keys and scopes, and 50
parallel reservations of one single-use code."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from checkout_shop import BALANCE, MEMBER, Shop, cart_body, serve_shop
from sqlalchemy import Engine

from coupons.api_models import ValidateResponse

PROBLEM = "application/problem+json"


@pytest.fixture
def shop(db_url: str, engine: Engine, examples: Path, tmp_path: Path) -> Iterator[Shop]:
    yield from serve_shop(db_url, examples, tmp_path)


def by_code(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {coupon["code"]: coupon for coupon in answer["coupons"]}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    return body


def test_validate_answers_every_wallet_coupon_entered_code_the_best_mix_and_points(
    shop: Shop,
) -> None:
    answer = shop.validate(codes=[shop.ladder, "NOPE-NOPE-NOPE"], points=600)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    wallet = by_code(body)
    assert (wallet[shop.ladder]["eligible"], wallet[shop.ladder]["discount"]) == (True, "80.00")
    assert wallet[shop.ladder]["entered"] is True
    assert wallet[shop.first_brew]["eligible"] is False
    assert wallet[shop.first_brew]["reason_codes"] == ["first_order.not_first"]
    entered = body["entered"]
    assert [(c["code"], c["eligible"], c["discount"]) for c in entered["codes"]] == [
        (shop.ladder, True, "80.00"),
        ("NOPE-NOPE-NOPE", False, "0.00"),
    ]
    assert entered["codes"][1]["reason_codes"] == ["code.unknown"]
    assert (entered["discount"], entered["ok"]) == ("80.00", False)
    assert body["best"] == {"codes": [shop.ladder], "discount": "80.00", "free_shipping": False}
    # 500.00 less 80.00 leaves 420.00; 30% of it is 6,300 points, above the balance of 3,400.
    points = body["points"]
    assert (points["balance"], points["order_total"], points["most_for_order"]) == (
        BALANCE,
        "420.00",
        6300,
    )
    assert (points["redeemable"], points["value"]) == (3400, "68.00")
    assert (points["requested_value"], points["requested_refusal"]) == ("12.00", None)


@pytest.mark.parametrize(
    ("header", "locale", "reason"),
    [
        ({"Accept-Language": "en-GB,en;q=0.9"}, "en", "Only for your first order"),
        ({"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}, "zh-CN", "仅限首单使用"),
        ({"Accept-Language": "fr;q=1.0, en;q=0.5"}, "en", "Only for your first order"),
        ({}, "zh-CN", "仅限首单使用"),  # none asked: the member's own
    ],
)
def test_reasons_come_in_the_asked_language_else_the_members(
    shop: Shop, header: dict[str, str], locale: str, reason: str
) -> None:
    answer = shop.post("/v1/checkout/validate", cart_body(), **header)

    body = answer.json()
    assert body["locale"] == locale
    assert by_code(body)[shop.first_brew]["reasons"] == [reason]


def test_validate_of_an_unknown_member_is_a_404_problem(shop: Shop) -> None:
    answer = shop.validate(member_id="m-nobody")

    assert problem(answer, 404)["code"] == "member_not_found"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"items": [{"sku": "T-1", "price": "-1", "qty": 1}]}, "items.0.price"),
        ({"items": [{"sku": "T-1", "price": "10.00", "qty": 0}]}, "items.0.qty"),
        ({"items": [{"price": "10.00"}]}, "items.0.sku"),
        ({"member_id": ""}, "member_id"),
        ({"member_id": "m\x00mei"}, "member_id"),  # PostgreSQL stores no NUL
        ({"items": [{"sku": "T-1", "price": "99999999999999.99", "qty": 2}]}, "items"),
        ({"points": -5}, "points"),
        ({"coupon_codes": ["X"]}, "coupon_codes"),  # a misspelt field is not ignored
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    shop: Shop, change: dict[str, Any], field: str
) -> None:
    answer = shop.validate(**change)

    body = problem(answer, 422)
    assert body["code"] == "invalid_request"
    assert field in [error["field"] for error in body["errors"]]


def test_reserve_holds_codes_and_points_until_released(shop: Shop) -> None:
    held = shop.reserve("o-1", codes=[shop.ladder], points=600, ttl_seconds=600)

    assert held.status_code == 201, held.text
    reservation = held.json()
    assert reservation["status"] == "held"
    assert reservation["until"] == "2027-04-05T04:10:00Z"
    assert reservation["codes"] == [{"code": shop.ladder, "discount": "80.00"}]
    assert (reservation["points"], reservation["points_value"]) == (600, "12.00")
    while_held = shop.validate().json()
    assert by_code(while_held)[shop.ladder]["status"] == "reserved"
    assert (while_held["points"]["held"], while_held["points"]["available"]) == (600, 2800)

    path = f"/v1/checkout/reservations/{reservation['reservation_id']}/release"
    released = shop.post(path)
    again = shop.post(path)

    assert released.status_code == again.status_code == 200
    assert released.json()["status"] == again.json()["status"] == "released"
    after = shop.validate().json()
    assert by_code(after)[shop.ladder]["status"] == "issued"
    assert after["points"]["held"] == 0


def test_reserving_again_for_an_order_replaces_its_reservation(shop: Shop) -> None:
    first = shop.reserve("o-1", codes=[shop.ladder], points=600).json()
    second = shop.reserve("o-1", codes=[shop.ladder], points=900).json()

    old = shop.post(f"/v1/checkout/reservations/{first['reservation_id']}/release")

    assert old.json()["status"] == "released"
    now = shop.validate().json()
    assert by_code(now)[shop.ladder]["status"] == "reserved"  # the second still holds it
    assert now["points"]["held"] == 900
    assert second["status"] == "held"


def test_releasing_an_unknown_reservation_is_a_404_problem(shop: Shop) -> None:
    answer = shop.post("/v1/checkout/reservations/rsv_nothing/release")

    assert problem(answer, 404)["code"] == "reservation_not_found"


@pytest.mark.parametrize(
    ("change", "code", "reasons"),
    [
        ({"codes": ["first_brew"]}, "not_eligible", ["first_order.not_first"]),
        ({"codes": ["ladder"]}, "code_unavailable", ["code.reserved"]),
        ({"codes": ["NOPE-NOPE-NOPE"]}, "code_unavailable", ["code.unknown"]),
        ({"points": 3000}, "points_not_held", ["points.insufficient"]),  # 2,800 not held
        ({"points": 400}, "points_not_held", ["points.below_minimum"]),
        (
            {"points": 2000, "items": [{"sku": "T-3", "price": "100.00"}]},
            "points_not_held",
            ["points.over_order_share"],  # 30% of 100.00 is 1,500 points
        ),
    ],
)
def test_a_refused_reservation_is_a_409_with_its_reasons_and_holds_nothing(
    shop: Shop, change: dict[str, Any], code: str, reasons: list[str]
) -> None:
    assert shop.reserve("o-1", codes=[shop.ladder], points=600).status_code == 201
    wallet = {"first_brew": shop.first_brew, "ladder": shop.ladder}
    codes = [wallet.get(text, text) for text in change.get("codes", [])]
    before = shop.validate().json()

    answer = shop.reserve("o-2", **{**change, "codes": codes})

    body = problem(answer, 409)
    assert (body["code"], body["reasons"]) == (code, reasons)
    after = shop.validate().json()
    assert after["points"] == before["points"]
    assert [c["status"] for c in after["coupons"]] == [c["status"] for c in before["coupons"]]


@pytest.mark.parametrize(
    ("path", "body", "scope", "wrong"),
    [
        ("/v1/checkout/validate", {"member_id": MEMBER, "items": []}, "checkout", "events"),
        ("/v1/checkout/reserve", {"member_id": MEMBER, "items": [], "order_id": "o-9"},
         "checkout", "events"),
        ("/v1/checkout/reservations/rsv_x/release", None, "checkout", "events"),
        (f"/v1/members/{MEMBER}/coupons", {"coupon_id": "free-shipping"}, "admin", "checkout"),
    ],
)  # fmt: skip
def test_each_endpoint_wants_a_key_with_its_scope(
    shop: Shop, path: str, body: Any, scope: str, wrong: str
) -> None:
    missing = shop.post(path, body, scope=None)
    forbidden = shop.post(path, body, scope=wrong)
    allowed = shop.post(path, body, scope="admin")  # admin may do everything

    assert problem(missing, 401)["code"] == "unauthenticated"
    assert problem(forbidden, 403)["code"] == "forbidden"
    assert allowed.status_code not in (401, 403)


def test_issuing_a_coupon_puts_a_code_in_the_wallet_once_per_issue_key(shop: Shop) -> None:
    path = f"/v1/members/{MEMBER}/coupons"
    body = {"coupon_id": "friend-tea-25", "issue_key": "crm-1"}

    issued = shop.post(path, body, scope="admin")
    again = shop.post(path, body, scope="admin")

    assert issued.status_code == again.status_code == 201
    entry = issued.json()
    assert entry["code"] == again.json()["code"]
    assert (entry["coupon_id"], entry["member_id"], entry["status"]) == (
        "friend-tea-25",
        MEMBER,
        "issued",
    )
    assert entry["expires_at"] == "2027-05-05T04:00:00Z"  # valid_for: 30d
    assert entry["code"] in by_code(shop.validate().json())


def test_issuing_to_an_unknown_member_or_an_unknown_coupon_is_a_problem(shop: Shop) -> None:
    nobody = shop.post("/v1/members/m-nobody/coupons", {"coupon_id": "friend-tea-25"},
                       scope="admin")  # fmt: skip
    unknown = shop.post(f"/v1/members/{MEMBER}/coupons", {"coupon_id": "nope"}, scope="admin")

    assert problem(nobody, 404)["code"] == "member_not_found"
    body = problem(unknown, 422)
    assert (body["code"], body["errors"][0]["field"]) == ("unknown_coupon", "coupon_id")


RACERS = 50


@pytest.fixture
def racing_shop(db_url: str, engine: Engine, examples: Path, tmp_path: Path) -> Iterator[Shop]:
    """The shop with room for every racer at once (over LOYALTY_API_MAX_IN_FLIGHT, the
    default 32, some would be shed with a 503 before reaching the code)."""
    yield from serve_shop(db_url, examples, tmp_path, api_max_in_flight=RACERS)


def test_fifty_parallel_reservations_of_a_single_use_code_give_one_success(
    racing_shop: Shop,
) -> None:
    shop = racing_shop
    barrier = threading.Barrier(RACERS)
    answers: list[httpx.Response | None] = [None] * RACERS

    def race(index: int) -> None:
        with httpx.Client(base_url=shop.base, timeout=60) as client:
            client.get("/livez")  # connected before the start
            barrier.wait()
            answers[index] = client.post(
                "/v1/checkout/reserve",
                json={"member_id": MEMBER, "items": [{"sku": "T-2", "price": "500.00"}],
                      "order_id": f"o-race-{index}", "codes": [shop.ladder]},
                headers={"Authorization": f"Bearer {shop.keys['checkout']}"},
            )  # fmt: skip

    threads = [threading.Thread(target=race, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    outcomes = Counter(
        answer.status_code if answer.status_code != 409 else answer.json()["code"]
        for answer in answers
        if answer is not None
    )
    assert outcomes == {201: 1, "code_unavailable": RACERS - 1}


def test_every_checkout_error_is_declared_as_problem_json_in_openapi(shop: Shop) -> None:
    spec = httpx.get(f"{shop.base}/openapi.json").json()

    for path in (
        "/v1/checkout/validate",
        "/v1/checkout/reserve",
        "/v1/members/{member_id}/coupons",
    ):
        responses = spec["paths"][path]["post"]["responses"]
        errors = {status: r for status, r in responses.items() if status >= "400"}
        assert {"401", "403", "422"} <= set(errors)
        for declared in errors.values():
            assert list(declared["content"]) == [PROBLEM]


def test_the_validate_answer_is_written_as_its_schema_writes_it(shop: Shop) -> None:
    """The endpoint writes its answer itself (orjson), not through ValidateResponse: it must
    be what the model would have written, key for key."""
    shop.reserve("o-1", codes=[shop.ladder], points=600, ttl_seconds=600)
    answer = shop.validate(codes=[shop.ladder, "NOT-A-CODE"], points=500)

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    written = answer.json()
    assert ValidateResponse.model_validate(written).model_dump(mode="json") == written
    assert any(coupon["expires_at"] for coupon in written["coupons"])  # times compared too
