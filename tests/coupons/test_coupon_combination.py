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

TEA_DAY = datetime(2027, 5, 7, 16, 30, tzinfo=UTC)  # the 8th in Shanghai, after the harvest


def evaluate(
    program: Program, wallet: list[WalletCoupon], basket: Cart, tier: str, now: datetime = NOW
) -> tuple[CouponEvaluation, ...]:
    ctx = EligibilityContext(
        cart=basket, facts=facts(tier), now=now, rules=get_rules(program), usage={}
    )
    return evaluate_wallet(wallet, ctx)


def test_one_coupon_per_group_the_largest_in_each(program: Program) -> None:
    # platform: cart-steep (60), friend-tea (25), spring-harvest (over); default: first-brew
    # (15), birthday (40); member_day: tea-day (10% of 1000 = 100); shipping: free-shipping.
    wallet = [
        entry(c)
        for c in (
            "spring-harvest-ladder",
            "cart-steep-12",
            "friend-tea-25",
            "first-brew-15",
            "birthday-pot",
            "tea-day-ninety",
            "free-shipping",
        )
    ]
    evaluations = evaluate(
        program, wallet, cart(line("tea", "1000.00"), shipping="10.00"), "oolong", TEA_DAY
    )

    best = best_combination(evaluations, cart(line("tea", "1000.00"), shipping="10.00"))

    assert best.codes == ("birthday-pot", "cart-steep-12", "free-shipping", "tea-day-ninety")
    assert best.discount == Decimal("210.00")  # 40 + 60 + 10 + 100
    assert best.free_shipping


def test_an_exclusive_coupon_wins_alone_when_it_gives_more(program: Program) -> None:
    basket = cart(line("teaware", "2000.00"))
    wallet = [entry(c) for c in ("collector-teaware-200", "cart-steep-12", "birthday-pot")]

    best = best_combination(evaluate(program, wallet, basket, "puer"), basket)

    assert best.codes == ("collector-teaware-200",)  # 200 beats 60 + 40
    assert best.discount == Decimal("200.00")


def test_stacked_coupons_beat_an_exclusive_one_that_gives_less(program: Program) -> None:
    basket = cart(line("teaware", "2000.00"), shipping="8.00")
    wallet = [
        entry(c)
        for c in (
            "collector-teaware-200",
            "cart-steep-12",
            "birthday-pot",
            "tea-day-ninety",
            "free-shipping",
        )
    ]

    best = best_combination(evaluate(program, wallet, basket, "puer", TEA_DAY), basket)

    assert best.codes == ("birthday-pot", "cart-steep-12", "free-shipping", "tea-day-ninety")
    assert best.discount == Decimal("258.00")  # 40 + 60 + 150 + 8 beats 200 alone


def test_an_exclusive_coupon_wins_a_tie_with_fewer_coupons(program: Program) -> None:
    tasting = {"id": "tasting-10", "name": {"en": "x"}, "discount": {"amount_off": 10}}
    extra = with_coupons(program, {**tasting, "stacking": {"group": "tasting"}})
    basket = cart(line("teaware", "1500.00"))
    wallet = [
        entry(c) for c in ("collector-teaware-200", "birthday-pot", "tea-day-ninety", "tasting-10")
    ]

    best = best_combination(evaluate(extra, wallet, basket, "puer", TEA_DAY), basket)

    assert best.codes == ("collector-teaware-200",)  # 200 alone ties 40 + 150 + 10
    assert best.discount == Decimal("200.00")


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
    basket = cart(line("tea", "500.00"))
    wallet = [entry("c-40", code="CCCC"), entry("a-40", code="AAAA"), entry("b-40", code="BBBB")]
    evaluations = evaluate(extra, [*wallet, entry("exclusive-80", code="XXXX")], basket, "leaf")

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
    basket = cart(line("tea", "100.00"))
    evaluations = evaluate(
        extra, [entry("big-90"), entry("mid-60"), entry("low-15")], basket, "leaf"
    )

    best = best_combination(evaluations, basket)

    # 90 + 15 already covers the 100; the cap makes 60 useless, so the fewest coupons win.
    assert best.discount == Decimal("100.00")
    assert best.codes == ("big-90", "low-15")
    shares = allocate([e for e in evaluations if e.code in best.codes], basket)
    assert shares == {"big-90": Decimal("90.00"), "low-15": Decimal("10.00")}


def test_nothing_eligible_means_no_coupon_and_no_discount(program: Program) -> None:
    basket = cart(line("tea", "50.00"))

    best = best_combination(evaluate(program, [entry("birthday-pot")], basket, "leaf"), basket)

    assert best.codes == () and best.discount == Decimal("0.00")


def test_codes_asked_for_together_must_respect_the_stacking_rules(program: Program) -> None:
    basket = cart(line("teaware", "2500.00"))
    wallet = [
        entry("cart-steep-12"),
        entry("friend-tea-25"),
        entry("collector-teaware-200"),
    ]
    evaluations = evaluate(program, wallet, basket, "puer")

    conflicts = stacking_conflicts(evaluations)

    assert conflicts["friend-tea-25"].code == "stacking.group"
    assert conflicts["friend-tea-25"].params == {"other": "cart-steep-12"}
    assert conflicts["collector-teaware-200"].code == "stacking.exclusive"
    assert "cart-steep-12" not in conflicts
