"""The best combination: one coupon per group, an exclusive coupon alone, the largest discount,
ties broken the same way every time."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from coupon_factories import NOW, cart, entry, facts, line, with_coupons

from core.program.loader import Program
from coupons.carts import Cart
from coupons.combination import allocate, best_combination, stacking_conflicts
from coupons.context import EligibilityContext
from coupons.eligibility import CouponEvaluation, evaluate_wallet
from coupons.rules import get_rules
from coupons.snapshots import WalletCoupon

MEMBER_DAY = datetime(2026, 11, 17, 16, 30, tzinfo=UTC)  # the 18th in Shanghai, after Double 11


def evaluate(
    program: Program, wallet: list[WalletCoupon], basket: Cart, tier: str, now: datetime = NOW
) -> tuple[CouponEvaluation, ...]:
    ctx = EligibilityContext(
        cart=basket, facts=facts(tier), now=now, rules=get_rules(program), usage={}
    )
    return evaluate_wallet(wallet, ctx)


def test_one_coupon_per_group_the_largest_in_each(program: Program) -> None:
    # platform: cart-rescue (50), referral (30), double11 (over); default: welcome (20),
    # birthday (50); member_day: gold-member-day (15% of 1000 = 150); shipping: free-shipping.
    wallet = [
        entry(c)
        for c in (
            "double11-ladder",
            "cart-rescue-10",
            "referral-thanks-30",
            "welcome-20",
            "birthday-gift",
            "gold-member-day",
            "free-shipping",
        )
    ]
    evaluations = evaluate(
        program, wallet, cart(line("home", "1000.00"), shipping="10.00"), "gold", MEMBER_DAY
    )

    best = best_combination(evaluations, cart(line("home", "1000.00"), shipping="10.00"))

    assert best.codes == ("birthday-gift", "cart-rescue-10", "free-shipping", "gold-member-day")
    assert best.discount == Decimal("260.00")  # 50 + 50 + 10 + 150
    assert best.free_shipping


def test_an_exclusive_coupon_wins_alone_when_it_gives_more(program: Program) -> None:
    basket = cart(line("home", "2000.00"))
    wallet = [entry(c) for c in ("vip-exclusive-300", "double11-ladder", "birthday-gift")]

    best = best_combination(evaluate(program, wallet, basket, "diamond"), basket)

    assert best.codes == ("vip-exclusive-300",)
    assert best.discount == Decimal("300.00")


def test_stacked_coupons_beat_an_exclusive_one_that_gives_less(program: Program) -> None:
    basket = cart(line("home", "2000.00"), shipping="8.00")
    wallet = [
        entry(c)
        for c in (
            "vip-exclusive-300",
            "cart-rescue-10",
            "birthday-gift",
            "gold-member-day",
            "free-shipping",
        )
    ]

    best = best_combination(evaluate(program, wallet, basket, "diamond", MEMBER_DAY), basket)

    assert best.codes == ("birthday-gift", "cart-rescue-10", "free-shipping", "gold-member-day")
    assert best.discount == Decimal("308.00")  # 50 + 50 + 200 + 8 beats 300 alone


def test_an_exclusive_coupon_wins_a_tie_with_fewer_coupons(program: Program) -> None:
    basket = cart(line("home", "2000.00"))
    wallet = [
        entry(c)
        for c in ("vip-exclusive-300", "cart-rescue-10", "birthday-gift", "gold-member-day")
    ]

    best = best_combination(evaluate(program, wallet, basket, "diamond", MEMBER_DAY), basket)

    assert best.codes == ("vip-exclusive-300",)  # 300 alone ties 50 + 50 + 200
    assert best.discount == Decimal("300.00")


def test_a_tie_goes_to_fewer_coupons_then_to_the_smaller_codes(program: Program) -> None:
    extra = with_coupons(
        program,
        {
            "id": "exclusive-80",
            "name": {"en": "x"},
            "discount": {"amount_off": 80},
            "stacking": {"exclusive": True},
        },
        {
            "id": "a-40",
            "name": {"en": "a"},
            "discount": {"amount_off": 40},
            "stacking": {"group": "a"},
        },
        {
            "id": "b-40",
            "name": {"en": "b"},
            "discount": {"amount_off": 40},
            "stacking": {"group": "b"},
        },
        {
            "id": "c-40",
            "name": {"en": "c"},
            "discount": {"amount_off": 40},
            "stacking": {"group": "a"},
        },
    )
    basket = cart(line("home", "500.00"))
    wallet = [entry("c-40", code="CCCC"), entry("a-40", code="AAAA"), entry("b-40", code="BBBB")]
    evaluations = evaluate(extra, [*wallet, entry("exclusive-80", code="XXXX")], basket, "regular")

    assert best_combination(evaluations, basket).codes == ("XXXX",)  # 80 with one coupon
    assert best_combination(evaluations[:3], basket).codes == ("AAAA", "BBBB")  # AAAA < CCCC


def test_together_coupons_never_take_off_more_than_the_cart_holds(program: Program) -> None:
    extra = with_coupons(
        program,
        {
            "id": "big-90",
            "name": {"en": "x"},
            "discount": {"amount_off": 90},
            "stacking": {"group": "a"},
        },
        {
            "id": "mid-60",
            "name": {"en": "y"},
            "discount": {"amount_off": 60},
            "stacking": {"group": "b"},
        },
        {
            "id": "low-15",
            "name": {"en": "z"},
            "discount": {"amount_off": 15},
            "stacking": {"group": "c"},
        },
    )
    basket = cart(line("home", "100.00"))
    evaluations = evaluate(
        extra, [entry("big-90"), entry("mid-60"), entry("low-15")], basket, "regular"
    )

    best = best_combination(evaluations, basket)

    # 90 + 15 already covers the 100; the cap makes 60 useless, so the fewest coupons win.
    assert best.discount == Decimal("100.00")
    assert best.codes == ("big-90", "low-15")
    shares = allocate([e for e in evaluations if e.code in best.codes], basket)
    assert shares == {"big-90": Decimal("90.00"), "low-15": Decimal("10.00")}


def test_nothing_eligible_means_no_coupon_and_no_discount(program: Program) -> None:
    basket = cart(line("home", "50.00"))

    best = best_combination(evaluate(program, [entry("birthday-gift")], basket, "regular"), basket)

    assert best.codes == () and best.discount == Decimal("0.00")


def test_codes_asked_for_together_must_respect_the_stacking_rules(program: Program) -> None:
    basket = cart(line("home", "2500.00"))
    wallet = [
        entry("cart-rescue-10"),
        entry("referral-thanks-30"),
        entry("vip-exclusive-300"),
    ]
    evaluations = evaluate(program, wallet, basket, "diamond")

    conflicts = stacking_conflicts(evaluations)

    assert conflicts["referral-thanks-30"].code == "stacking.group"
    assert conflicts["referral-thanks-30"].params == {"other": "cart-rescue-10"}
    assert conflicts["vip-exclusive-300"].code == "stacking.exclusive"
    assert "cart-rescue-10" not in conflicts
