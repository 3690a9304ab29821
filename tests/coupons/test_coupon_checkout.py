"""Checkout on both databases: validate, reserve (counting against limits), release, redeem on
order.paid, and the refund policy."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from coupon_factories import (
    NOW,
    cart,
    item,
    line,
    paid,
    refunded,
    registered,
    send,
    set_tier,
    with_coupons,
)
from sqlalchemy import Engine, select

from core.program.loader import Program
from coupons.carts import Cart
from coupons.checkout import (
    Reservation,
    expire_wallets,
    release_order,
    reserve_codes,
    validate_cart,
)
from coupons.checkout_check import check_checkout
from coupons.errors import CodeUnavailable, LimitReached, NotEligible
from coupons.limits import fetch_usage
from coupons.refusals import fetch_refusals
from coupons.tables import coupon_codes
from coupons.wallet import generate_coupon_codes, issue_coupon

FLASH = {
    "id": "flash-20",
    "name": {"en": "Flash sale"},
    "discount": {"amount_off": 20},
    "eligibility": {"min_order_total": 50},
    "limits": {"budget": 40},
    "stacking": {"group": "flash"},
}
BASKET = cart(line("tea", "200.00"))


@pytest.fixture
def shop(program: Program) -> Program:
    return with_coupons(program, FLASH)


@pytest.fixture
def members(engine: Engine, shop: Program) -> list[str]:
    send(engine, shop, *(registered(m) for m in ("m-1", "m-2", "m-3")))
    return ["m-1", "m-2", "m-3"]


def issue(engine: Engine, program: Program, coupon_id: str, member_id: str = "m-1") -> str:
    with engine.begin() as conn:
        return issue_coupon(
            conn, program, coupon_id=coupon_id, member_id=member_id, now=NOW - timedelta(hours=1)
        ).code


def reserve(
    engine: Engine,
    program: Program,
    codes: list[str],
    *,
    member_id: str = "m-1",
    order_id: str = "o-1",
    basket: Cart = BASKET,
    **options: Any,
) -> Reservation:
    with engine.begin() as conn:
        return reserve_codes(
            conn,
            program,
            member_id=member_id,
            order_id=order_id,
            cart=basket,
            codes=codes,
            now=options.pop("now", NOW),
            **options,
        )


def statuses(engine: Engine) -> dict[str, tuple[str, str | None]]:
    query = select(coupon_codes.c.code, coupon_codes.c.status, coupon_codes.c.order_id)
    with engine.connect() as conn:
        return {row.code: (row.status, row.order_id) for row in conn.execute(query)}


def usage(engine: Engine, coupon_id: str, member_id: str = "m-1") -> tuple[int, Decimal, int]:
    with engine.connect() as conn:
        found = fetch_usage(conn, member_id, [coupon_id])[coupon_id]
    return found.used, found.spent, len(found.member_uses)


def test_validation_explains_each_code_and_the_stacking(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    rescue = issue(engine, shop, "cart-steep-12")
    thanks = issue(engine, shop, "friend-tea-25")
    theirs = issue(engine, shop, "birthday-pot", "m-2")

    with engine.connect() as conn:
        result = validate_cart(
            conn,
            shop,
            member_id="m-1",
            cart=BASKET,
            codes=[rescue.lower(), thanks, theirs, "NOPE"],
            now=NOW,
        )

    checks = {check.code: check for check in result.checks}
    assert (checks[rescue].eligible, checks[rescue].discount) == (True, Decimal("24.00"))
    assert [d.code for d in checks[thanks].decisions] == ["stacking.group"]
    assert [d.code for d in checks[theirs].decisions] == ["code.unknown"]  # not m-1's
    assert [d.code for d in checks["NOPE"].decisions] == ["code.unknown"]
    assert result.discount == Decimal("24.00") and not result.ok


def test_a_reservation_holds_the_codes_and_counts_against_the_limits(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    flash = issue(engine, shop, "flash-20")
    gift = issue(engine, shop, "birthday-pot")

    held = reserve(engine, shop, [flash, gift])

    assert held.shares == {flash: Decimal("20.00"), gift: Decimal("40.00")}
    assert (held.discount, held.until) == (Decimal("60.00"), NOW + timedelta(minutes=15))
    assert statuses(engine) == {flash: ("reserved", "o-1"), gift: ("reserved", "o-1")}
    assert usage(engine, "flash-20") == (1, Decimal("20.00"), 0)
    assert usage(engine, "birthday-pot") == (1, Decimal("40.00"), 1)


def test_a_second_code_of_a_once_per_member_coupon_cannot_be_held(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    first, second = issue(engine, shop, "birthday-pot"), issue(engine, shop, "birthday-pot")
    reserve(engine, shop, [first])

    with pytest.raises(LimitReached) as refused:
        reserve(engine, shop, [second], order_id="o-2")

    assert refused.value.reasons == ("limits.per_member_period",)
    assert statuses(engine)[second] == ("issued", None)


def test_reserving_again_for_the_same_order_replaces_its_reservation(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    gift, rescue = issue(engine, shop, "birthday-pot"), issue(engine, shop, "cart-steep-12")
    reserve(engine, shop, [gift])

    reserve(engine, shop, [rescue])

    assert statuses(engine) == {gift: ("issued", None), rescue: ("reserved", "o-1")}
    assert usage(engine, "birthday-pot") == (0, Decimal("0.00"), 0)


def test_a_refused_reservation_holds_nothing(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    gift, welcome = issue(engine, shop, "birthday-pot"), issue(engine, shop, "first-brew-15")

    with pytest.raises(NotEligible, match=r"min_order_total\.short"):
        reserve(engine, shop, [welcome, gift], basket=cart(line("tea", "150.00")))

    assert statuses(engine) == {gift: ("issued", None), welcome: ("issued", None)}


def test_a_used_code_is_unavailable(engine: Engine, shop: Program, members: list[str]) -> None:
    gift = issue(engine, shop, "birthday-pot")
    reserve(engine, shop, [gift])

    with pytest.raises(CodeUnavailable, match=r"code\.reserved"):
        reserve(engine, shop, [gift], order_id="o-2")


def test_releasing_an_order_gives_back_its_codes_and_limits(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    flash = issue(engine, shop, "flash-20")
    reserve(engine, shop, [flash])

    with engine.begin() as conn:
        assert release_order(conn, order_id="o-1", now=NOW) == [flash]

    assert statuses(engine)[flash] == ("issued", None)
    assert usage(engine, "flash-20") == (0, Decimal("0.00"), 0)


def test_a_budget_allows_only_the_uses_it_covers_until_a_hold_lapses(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    codes = {m: issue(engine, shop, "flash-20", m) for m in members}
    reserve(engine, shop, [codes["m-1"]], member_id="m-1", order_id="o-1")
    reserve(engine, shop, [codes["m-2"]], member_id="m-2", order_id="o-2")

    with pytest.raises(LimitReached, match=r"limits\.sold_out"):
        reserve(engine, shop, [codes["m-3"]], member_id="m-3", order_id="o-3")
    later = NOW + timedelta(minutes=16)  # m-1's and m-2's holds have lapsed
    reserve(engine, shop, [codes["m-3"]], member_id="m-3", order_id="o-3", now=later)

    assert usage(engine, "flash-20") == (1, Decimal("20.00"), 0)
    assert statuses(engine)[codes["m-1"]] == ("issued", None)


def test_the_daily_job_releases_lapsed_holds_and_expires_codes(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    flash = issue(engine, shop, "flash-20")
    daily = issue(engine, shop, "tea-day-ninety")
    reserve(engine, shop, [flash])

    with engine.begin() as conn:
        assert expire_wallets(conn, now=NOW + timedelta(days=1)) == (1, 1)

    assert statuses(engine) == {flash: ("issued", None), daily: ("expired", None)}
    assert usage(engine, "flash-20")[:2] == (0, Decimal("0.00"))


def test_a_generated_code_is_claimed_by_the_first_member_to_reserve_it(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    with engine.begin() as conn:
        [code] = generate_coupon_codes(
            conn, shop, coupon_id="free-shipping", count=1, now=NOW - timedelta(hours=1)
        )
    reserve(engine, shop, [code], member_id="m-2", order_id="o-2")
    with engine.begin() as conn:
        release_order(conn, order_id="o-2", now=NOW)

    with pytest.raises(CodeUnavailable):
        reserve(engine, shop, [code], member_id="m-3", order_id="o-3")
    with engine.connect() as conn:
        owner = conn.execute(select(coupon_codes.c.member_id)).scalar()
    assert owner == "m-2"


def test_a_paid_order_redeems_its_reserved_codes_at_the_reserved_discount(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    flash = issue(engine, shop, "flash-20")
    reserve(engine, shop, [flash])

    send(engine, shop, paid("m-1", "o-1", items=[item("tea", "180.00")], codes=[flash]))

    assert statuses(engine)[flash] == ("redeemed", "o-1")
    assert usage(engine, "flash-20")[:2] == (1, Decimal("20.00"))


def test_a_paid_order_redeems_an_unreserved_code_that_applies(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    welcome = issue(engine, shop, "first-brew-15")  # first order: the paid order itself is not

    send(engine, shop, paid("m-1", "o-1", items=[item("tea", "120.00")], codes=[welcome]))

    assert statuses(engine)[welcome] == ("redeemed", "o-1")
    assert usage(engine, "first-brew-15") == (1, Decimal("15.00"), 1)


def test_an_unreserved_code_that_does_not_apply_is_not_redeemed(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    ladder = issue(engine, shop, "spring-harvest-ladder")  # m-1 is a leaf member

    send(engine, shop, paid("m-1", "o-1", items=[item("tea", "800.00")], codes=[ladder]))

    assert statuses(engine)[ladder] == ("issued", None)
    with engine.connect() as conn:
        [(refusal, _locale)] = fetch_refusals(conn, order_id="o-1")
    assert (refusal.code, refusal.reason) == (ladder, "tiers.not_member")


def test_a_code_is_redeemed_once_whatever_the_orders_say(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    set_tier(engine, "m-1", "bud")
    ladder = issue(engine, shop, "spring-harvest-ladder")

    send(
        engine,
        shop,
        paid("m-1", "o-1", items=[item("tea", "300.00")], codes=[ladder]),
        paid("m-1", "o-2", items=[item("tea", "300.00")], codes=[ladder]),
    )

    assert statuses(engine)[ladder] == ("redeemed", "o-1")
    assert usage(engine, "spring-harvest-ladder") == (1, Decimal("30.00"), 1)


def test_a_full_refund_puts_a_still_valid_coupon_back_in_the_wallet(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    gift = issue(engine, shop, "birthday-pot")
    send(engine, shop, paid("m-1", "o-1", items=[item("tea", "300.00")], codes=[gift]))

    send(engine, shop, refunded("o-1", "m-1", "100.00"))
    after_partial = statuses(engine)[gift]
    send(engine, shop, refunded("o-1", "m-1", "200.00"))

    assert after_partial == ("redeemed", "o-1")
    assert statuses(engine)[gift] == ("issued", None)
    assert usage(engine, "birthday-pot") == (0, Decimal("0.00"), 0)


def test_a_refund_does_not_bring_back_an_expired_coupon(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    daily = issue(engine, shop, "free-shipping")
    send(engine, shop, paid("m-1", "o-1", items=[item("tea", "30.00")], codes=[daily]))

    send(engine, shop, refunded("o-1", "m-1", "30.00"), now=NOW + timedelta(days=40))

    assert statuses(engine)[daily] == ("redeemed", "o-1")


def test_a_refund_that_arrives_before_its_order_still_returns_the_coupon(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    gift = issue(engine, shop, "birthday-pot")

    send(engine, shop, refunded("o-1", "m-1", "300.00"))
    send(engine, shop, paid("m-1", "o-1", items=[item("tea", "300.00")], codes=[gift]))

    assert statuses(engine)[gift] == ("issued", None)


def test_checkout_checks_an_entered_code_from_outside_the_wallet_against_its_limits(
    engine: Engine, shop: Program, members: list[str]
) -> None:
    # The budget (40.00) is spent by two other members; m-1 types in an unclaimed code of it.
    reserve(engine, shop, [issue(engine, shop, "flash-20", "m-2")], member_id="m-2", order_id="o-2")
    reserve(engine, shop, [issue(engine, shop, "flash-20", "m-3")], member_id="m-3", order_id="o-3")
    with engine.begin() as conn:
        [code] = generate_coupon_codes(
            conn, shop, coupon_id="flash-20", count=1, now=NOW - timedelta(hours=1)
        )
    issue(engine, shop, "free-shipping")  # m-1's wallet holds another coupon only

    with engine.connect() as conn:
        checked = check_checkout(
            conn, shop, member_id="m-1", cart=BASKET, codes=[code], points=0, now=NOW
        )

    [entered] = checked.entered.checks
    assert (entered.coupon_id, entered.eligible) == ("flash-20", False)
    assert [d.code for d in entered.decisions if not d.ok] == ["limits.sold_out"]
    assert {e.entry.coupon_id for e in checked.wallet.evaluations} == {"free-shipping"}
