"""Refused redemptions on both databases: each code a paid order could not redeem is a fact
with its order, member, coupon, reason and time; recorded once; counted for the intake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from coupon_factories import NOW, item, paid, registered, send, with_coupons
from sqlalchemy import Connection, Engine, event, func, select

from core.events.handlers import HandlerContext
from core.events.validation import validate_event
from core.program.loader import Program
from coupons.handlers import REFUSED_TALLY, redeem_paid_orders
from coupons.refusals import Refusal, describe_refusals, fetch_refusals, mask_code
from coupons.tables import coupon_codes, coupon_refusals
from coupons.wallet import issue_coupon

ONCE = {
    "id": "once-10",
    "name": {"en": "Ten off", "zh-CN": "立减10元"},
    "discount": {"amount_off": 10},
    "eligibility": {"min_order_total": 50},
    "valid_for": "7d",
    "limits": {"per_member": 1},
}
BASKET = [item("home", "120.00")]
UNKNOWN_CODE = "K7QM-4XRT-9HPW"  # a well-formed code nobody issued


@pytest.fixture
def shop(program: Program) -> Program:
    return with_coupons(program, ONCE)


@pytest.fixture
def members(engine: Engine, shop: Program) -> list[str]:
    send(engine, shop, registered("m-1"), registered("m-2", locale="zh-CN"))
    return ["m-1", "m-2"]


def issue(engine: Engine, program: Program, member_id: str = "m-1", **at: Any) -> str:
    with engine.begin() as conn:
        issued_at = at.get("at", NOW - timedelta(hours=1))
        return issue_coupon(
            conn, program, coupon_id="once-10", member_id=member_id, now=issued_at
        ).code


def refusals(engine: Engine, **only: Any) -> list[Refusal]:
    with engine.connect() as conn:
        return [refusal for refusal, _locale in fetch_refusals(conn, **only)]


def texts(engine: Engine, program: Program, **only: Any) -> list[str]:
    with engine.connect() as conn:
        return [r["text"] for r in describe_refusals(fetch_refusals(conn, **only), program)]


def test_an_unknown_code_is_recorded_with_its_order_member_reason_and_time(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    report = send(engine, shop, paid("m-1", "o-1", items=BASKET, codes=[UNKNOWN_CODE, "hello"]))

    found = sorted(refusals(engine), key=lambda r: r.code)
    assert [(r.order_id, r.member_id, r.code, r.coupon_id, r.reason) for r in found] == [
        ("o-1", "m-1", UNKNOWN_CODE, None, "code.unknown"),
        ("o-1", "m-1", "hello", None, "code.unknown"),  # not even a code: kept as given
    ]
    assert {(r.refused_at, r.event_id) for r in found} == {(NOW, "paid-o-1")}
    assert report.tallies[REFUSED_TALLY] == 2
    assert texts(engine, shop) == ["This code does not exist"] * 2


def test_an_expired_code_is_refused_with_its_expiry_in_the_members_locale(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    issued_at = NOW - timedelta(days=8)
    code = issue(engine, shop, "m-2", at=issued_at)

    send(engine, shop, paid("m-2", "o-1", items=BASKET, codes=[code]))

    [refusal] = refusals(engine)
    assert (refusal.code, refusal.coupon_id, refusal.reason) == (code, "once-10", "code.expired")
    assert refusal.params == {"expires_at": issued_at + timedelta(days=7)}
    assert texts(engine, shop) == ["已于 2027年4月4日 过期"]  # m-2 reads Chinese


def test_a_code_over_the_per_member_limit_is_refused_with_the_limit(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    first, second = issue(engine, shop), issue(engine, shop)
    send(engine, shop, paid("m-1", "o-1", items=BASKET, codes=[first]))

    send(engine, shop, paid("m-1", "o-2", items=BASKET, codes=[second]))

    [refusal] = refusals(engine)
    assert (refusal.order_id, refusal.code, refusal.reason) == ("o-2", second, "limits.per_member")
    assert refusal.params == {"limit": 1}
    assert texts(engine, shop) == ["You have already used this coupon"]


def test_a_code_already_redeemed_by_another_order_is_refused_as_used(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    code = issue(engine, shop)
    send(engine, shop, paid("m-1", "o-1", items=BASKET, codes=[code]))

    send(engine, shop, paid("m-1", "o-2", items=BASKET, codes=[code]))

    assert [(r.order_id, r.reason) for r in refusals(engine)] == [("o-2", "code.redeemed")]


def test_another_members_code_is_unknown_to_the_member_but_recorded_with_its_coupon(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    theirs = issue(engine, shop, "m-2")

    send(engine, shop, paid("m-1", "o-1", items=BASKET, codes=[theirs]))

    [refusal] = refusals(engine)
    assert (refusal.member_id, refusal.coupon_id, refusal.reason) == (
        "m-1",
        "once-10",
        "code.unknown",
    )
    assert refusal.params == {"owner": "another member"}
    with engine.connect() as conn:
        assert conn.execute(select(coupon_codes.c.status)).scalar() == "issued"
    assert texts(engine, shop) == ["This code does not exist"]


def test_an_order_handled_again_records_its_refusals_once(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    order = paid("m-1", "o-1", items=BASKET, codes=[UNKNOWN_CODE, UNKNOWN_CODE.lower()])
    first = send(engine, shop, order)

    again = HandlerContext(conn=None, now=NOW, program=shop)  # type: ignore[arg-type]
    with engine.begin() as conn:
        again.conn = conn
        redeem_paid_orders(again, [validate_event(order)])  # what a retry or replay does

    assert first.tallies[REFUSED_TALLY] == 1  # the same code twice is one refusal
    assert again.tallies[REFUSED_TALLY] == 0
    assert [r.code for r in refusals(engine)] == [UNKNOWN_CODE]


@pytest.fixture
def refusal_inserts(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO COUPON_REFUSALS"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_batch_of_orders_writes_its_refusals_in_one_statement(
    engine: Engine, shop: Program, members: list[str], refusal_inserts: list[str]
) -> None:
    orders = [paid("m-1", f"o-{n}", items=BASKET, codes=[f"nope-{n}"]) for n in range(5)]

    report = send(engine, shop, *orders)

    assert len(refusal_inserts) == 1
    assert report.tallies[REFUSED_TALLY] == 5
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(coupon_refusals)).scalar() == 5


def test_refusals_are_listed_newest_first_by_member_order_and_limit(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    send(
        engine,
        shop,
        paid("m-1", "o-1", items=BASKET, codes=["a-1"], at=NOW - timedelta(hours=2)),
        paid("m-2", "o-2", items=BASKET, codes=["b-1", "b-2"], at=NOW - timedelta(hours=1)),
        paid("m-1", "o-3", items=BASKET, codes=["c-1"]),
    )

    assert [r.code for r in refusals(engine)] == ["c-1", "b-1", "b-2", "a-1"]
    assert [r.order_id for r in refusals(engine, member_id="m-1")] == ["o-3", "o-1"]
    assert [r.code for r in refusals(engine, order_id="o-2")] == ["b-1", "b-2"]
    assert [r.code for r in refusals(engine, limit=2)] == ["c-1", "b-1"]


def test_no_program_no_redemption_and_no_refusal(engine: Engine, members: list[str]) -> None:
    report = send(engine, None, paid("m-1", "o-1", items=BASKET, codes=[UNKNOWN_CODE]))

    assert refusals(engine) == [] and report.tallies[REFUSED_TALLY] == 0


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        (UNKNOWN_CODE, UNKNOWN_CODE),
        ("2345-6789-2345", "2345-6789-2345"),  # digits only, yet a code: not a phone number
        ("alice@example.com", "a***@example.com"),
        ("+86 138 0013 0001", "138****0001"),
        ("call 13800130001 for a code", "call 138****0001 for a code"),
        ("SUMMER", "SUMMER"),
    ],
)
def test_refused_codes_that_look_like_contact_details_are_masked(typed: str, shown: str) -> None:
    assert mask_code(typed) == shown
