"""Every coupon of the example program against carts that pass and fail each of its conditions:
eligibility, the discount, and the reasons as the member reads them in English and Chinese."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from coupon_factories import NOW, cart, entry, facts, line

from coupons.context import EligibilityContext
from coupons.eligibility import evaluate_coupon
from coupons.reasons import ReasonText
from coupons.rules import ProgramRules
from coupons.snapshots import CouponUsage

SHANGHAI_8TH = datetime(2027, 4, 7, 16, 30, tzinfo=UTC)  # 00:30 on the 8th in Shanghai
SHANGHAI_7TH = datetime(2027, 4, 7, 15, 30, tzinfo=UTC)  # 23:30 on the 7th in Shanghai


def case(
    coupon_id: str,
    basket: Any,
    *,
    tier: str = "leaf",
    paid_orders: int = 0,
    now: datetime = NOW,
    usage: CouponUsage | None = None,
    expires_at: datetime | None = None,
    status: str = "issued",
    discount: str = "0.00",
    eligible: bool | None = None,
    en: tuple[str, ...] = (),
    zh: tuple[str, ...] = (),
    id: str,
) -> Any:
    given = {
        "coupon_id": coupon_id,
        "basket": basket,
        "tier": tier,
        "paid_orders": paid_orders,
        "now": now,
        "usage": usage,
        "expires_at": expires_at,
        "status": status,
        "eligible": discount != "0.00" if eligible is None else eligible,
    }
    return pytest.param(given, Decimal(discount), en, zh, id=f"{coupon_id}: {id}")


def used(*days_ago: int, used: int = 0, spent: str = "0.00") -> CouponUsage:
    return CouponUsage(
        used=used,
        spent=Decimal(spent),
        member_uses=tuple(NOW - timedelta(days=d) for d in days_ago),
    )


CASES = [
    # first-brew-15: ¥15 off a first order of ¥88
    case("first-brew-15", cart(line("tea", "88.00")), discount="15.00", id="first order of 88"),
    case(
        "first-brew-15",
        cart(line("tea", "58.00")),
        en=("Add CN¥30.00 more to use this coupon",),
        zh=("还差 ¥30.00 即可使用",),
        id="30 short",
    ),
    case(
        "first-brew-15",
        cart(line("tea", "200.00")),
        paid_orders=1,
        en=("Only for your first order",),
        zh=("仅限首单使用",),
        id="not the first order",
    ),
    case(
        "first-brew-15",
        cart(line("tea", "200.00")),
        expires_at=NOW - timedelta(hours=1),
        en=("Expired on Apr 5, 2027",),
        zh=("已于 2027年4月5日 过期",),
        id="its 21 days are over",
    ),
    case(
        "first-brew-15",
        cart(line("tea", "200.00")),
        usage=used(2),
        en=("You have already used this coupon",),
        zh=("您已使用过此券",),
        id="once per member",
    ),
    case(
        "first-brew-15",
        cart(line("tea", "200.00")),
        status="redeemed",
        en=("Already used",),
        zh=("已使用",),
        id="this code was redeemed",
    ),
    # spring-harvest-ladder: bud and up, gift cards excluded, ¥30 off ¥200, ¥80 off ¥500,
    # ¥180 off ¥1000
    case(
        "spring-harvest-ladder",
        cart(line("tea", "200.00")),
        tier="bud",
        discount="30.00",
        en=("Add CN¥300.00 more to get CN¥80.00 off",),
        zh=("再买 ¥300.00 可减 ¥80.00",),
        id="first step reached",
    ),
    case(
        "spring-harvest-ladder",
        cart(line("tea", "1200.00"), line("gift_card", "500.00")),
        tier="oolong",
        discount="180.00",
        en=("Gift cards are excluded",),
        zh=("礼品卡不参与优惠",),
        id="highest step reached",
    ),
    case(
        "spring-harvest-ladder",
        cart(line("tea", "150.00"), line("gift_card", "500.00")),
        tier="bud",
        en=("Gift cards are excluded", "Add CN¥50.00 more to use this coupon"),
        zh=("礼品卡不参与优惠", "还差 ¥50.00 即可使用"),
        id="gift cards do not count toward the threshold",
    ),
    case(
        "spring-harvest-ladder",
        cart(line("tea", "1200.00")),
        en=("Only for Silver Bud, Golden Oolong, and Vintage Pu-erh members",),
        zh=("仅限银芽会员、金乌龙会员和陈年普洱会员使用",),
        id="leaf members",
    ),
    case(
        "spring-harvest-ladder",
        cart(line("tea", "1200.00")),
        tier="bud",
        now=datetime(2027, 3, 31, 4, tzinfo=UTC),
        en=("Valid from Apr 1, 2027",),
        zh=("2027年4月1日 起可用",),
        id="before it starts",
    ),
    case(
        "spring-harvest-ladder",
        cart(line("tea", "1200.00")),
        tier="bud",
        now=datetime(2027, 4, 30, 16, 0, 1, tzinfo=UTC),
        en=("This offer ended on Apr 30, 2027",),
        zh=("活动已于 2027年4月30日 结束",),
        id="after it ends",
    ),
    case(
        "spring-harvest-ladder",
        cart(line("tea", "1200.00")),
        tier="bud",
        usage=used(used=20_000),
        en=("This coupon has run out",),
        zh=("此券已被抢光",),
        id="total used up",
    ),
    case(
        "spring-harvest-ladder",
        cart(line("tea", "1200.00")),
        tier="bud",
        usage=used(spent="799830.00"),
        en=("This coupon has run out",),
        zh=("此券已被抢光",),
        id="budget cannot cover 180 more",
    ),
    case(
        "spring-harvest-ladder",
        cart(line("tea", "1200.00")),
        tier="bud",
        usage=used(spent="799820.00"),
        discount="180.00",
        id="budget covers exactly 180 more",
    ),
    case(
        "spring-harvest-ladder",
        cart(line("tea", "1200.00")),
        tier="bud",
        usage=used(1, 2, 3),
        en=("You have already used this coupon 3 times",),
        zh=("此券每人限用 3 次，您已用完",),
        id="three times per member",
    ),
    # cart-steep-12: 12% off ¥120, at most ¥60
    case("cart-steep-12", cart(line("tea", "200.00")), discount="24.00", id="12 percent"),
    case("cart-steep-12", cart(line("tea", "1000.00")), discount="60.00", id="capped at 60"),
    case("cart-steep-12", cart(line("tea", "155.55")), discount="18.67", id="rounded to the cent"),
    case(
        "cart-steep-12",
        cart(line("tea", "90.00")),
        en=("Add CN¥30.00 more to use this coupon",),
        zh=("还差 ¥30.00 即可使用",),
        id="30 short",
    ),
    # friend-tea-25: ¥25 off ¥99
    case("friend-tea-25", cart(line("tea", "99.00")), discount="25.00", id="exactly 99"),
    case(
        "friend-tea-25",
        cart(line("tea", "49.25", qty=2)),
        en=("Add CN¥0.50 more to use this coupon",),
        zh=("还差 ¥0.50 即可使用",),
        id="50 cents short",
    ),
    # birthday-pot: ¥40 off ¥188, once a year
    case("birthday-pot", cart(line("tea", "188.00")), discount="40.00", id="188"),
    case(
        "birthday-pot",
        cart(line("tea", "200.00")),
        usage=used(100),
        en=("You can use this coupon again from Dec 26, 2027",),
        zh=("2027年12月26日 后可再次使用",),
        id="used 100 days ago",
    ),
    case(
        "birthday-pot",
        cart(line("tea", "200.00")),
        usage=used(400),
        discount="40.00",
        id="used 400 days ago",
    ),
    # tea-day-ninety: oolong and puer, on the 8th (business time), 10% off, at most ¥150
    case(
        "tea-day-ninety",
        cart(line("tea", "1000.00")),
        tier="oolong",
        now=SHANGHAI_8TH,
        discount="100.00",
        id="oolong on the 8th",
    ),
    case(
        "tea-day-ninety",
        cart(line("tea", "2000.00")),
        tier="puer",
        now=SHANGHAI_8TH,
        discount="150.00",
        id="puer, capped",
    ),
    case(
        "tea-day-ninety",
        cart(line("tea", "1000.00")),
        tier="oolong",
        now=SHANGHAI_7TH,
        en=("Not available right now",),
        zh=("当前不满足使用条件",),
        id="the 7th in Shanghai, though 16:30 UTC comes after",
    ),
    case(
        "tea-day-ninety",
        cart(line("tea", "1000.00")),
        tier="bud",
        now=SHANGHAI_8TH,
        en=("Only for Golden Oolong and Vintage Pu-erh members",),
        zh=("仅限金乌龙会员和陈年普洱会员使用",),
        id="bud",
    ),
    # collector-teaware-200: puer, ¥200 off ¥1500 of teaware and clay teapots
    case(
        "collector-teaware-200",
        cart(line("teaware", "1000.00"), line("clay_teapot", "600.00")),
        tier="puer",
        discount="200.00",
        id="1600 of teaware and clay teapots",
    ),
    case(
        "collector-teaware-200",
        cart(line("teaware", "1000.00"), line("tea", "1000.00")),
        tier="puer",
        en=("Add CN¥500.00 more to use this coupon",),
        zh=("还差 ¥500.00 即可使用",),
        id="other categories do not count",
    ),
    case(
        "collector-teaware-200",
        cart(line("tea", "3000.00")),
        tier="puer",
        en=("Only for clay teapots and teaware", "Add CN¥1,500.00 more to use this coupon"),
        zh=("仅限紫砂壶和茶具商品使用", "还差 ¥1,500.00 即可使用"),
        id="no teaware",
    ),
    case(
        "collector-teaware-200",
        cart(line("teaware", "2500.00")),
        tier="oolong",
        en=("Only for Vintage Pu-erh members",),
        zh=("仅限陈年普洱会员使用",),
        id="oolong",
    ),
    # welcome-back-20: ¥20 off ¥128, once in 180 days
    case("welcome-back-20", cart(line("tea", "128.00")), discount="20.00", id="128"),
    # free-shipping: the cart's shipping fee
    case(
        "free-shipping",
        cart(line("tea", "10.00"), shipping="12.00"),
        discount="12.00",
        id="12 of shipping",
    ),
    case("free-shipping", cart(line("tea", "10.00")), eligible=True, id="no shipping fee given"),
]


@pytest.mark.parametrize(("given", "discount", "en", "zh"), CASES)
def test_each_example_coupon_explains_itself(
    rules: ProgramRules,
    given: dict[str, Any],
    discount: Decimal,
    en: tuple[str, ...],
    zh: tuple[str, ...],
) -> None:
    wallet_entry = entry(given["coupon_id"], status=given["status"], expires_at=given["expires_at"])
    usage = {given["coupon_id"]: given["usage"]} if given["usage"] else {}
    ctx = EligibilityContext(
        cart=given["basket"],
        facts=facts(given["tier"], paid_orders=given["paid_orders"]),
        now=given["now"],
        rules=rules,
        usage=usage,
    )

    evaluation = evaluate_coupon(wallet_entry, rules.coupons[given["coupon_id"]], ctx)

    assert evaluation.eligible is given["eligible"]
    assert evaluation.discount == discount
    assert _texts(rules, evaluation, "en") == list(en)
    assert _texts(rules, evaluation, "zh-CN") == list(zh)


def _texts(rules: ProgramRules, evaluation: Any, locale: str) -> list[str]:
    text = ReasonText(rules, locale)
    return [text.render(d, evaluation.rule) for d in evaluation.decisions]


def test_a_coupon_that_is_eligible_says_nothing_that_blocks_it(rules: ProgramRules) -> None:
    ctx = EligibilityContext(
        cart=cart(line("tea", "1200.00"), line("gift_card", "100.00")),
        facts=facts("oolong"),
        now=NOW,
        rules=rules,
    )

    ladder = rules.coupons["spring-harvest-ladder"]
    evaluation = evaluate_coupon(entry("spring-harvest-ladder"), ladder, ctx)

    assert evaluation.eligible
    assert [d.code for d in evaluation.decisions] == ["exclude_categories.excluded"]


def test_a_code_held_for_another_order_says_until_when(rules: ProgramRules) -> None:
    held = entry("first-brew-15", status="reserved")
    held = type(held)(**{**held.__dict__, "reserved_until": NOW + timedelta(minutes=10)})
    ctx = EligibilityContext(cart=cart(line("tea", "200.00")), facts=facts(), now=NOW, rules=rules)

    evaluation = evaluate_coupon(held, rules.coupons["first-brew-15"], ctx)

    assert not evaluation.eligible
    assert _texts(rules, evaluation, "zh-CN") == ["已被其他订单占用，2027/4/5 12:10 前不可用"]


def test_a_lapsed_hold_no_longer_blocks_the_code(rules: ProgramRules) -> None:
    held = entry("first-brew-15", status="reserved")
    held = type(held)(**{**held.__dict__, "reserved_until": NOW - timedelta(minutes=1)})
    ctx = EligibilityContext(cart=cart(line("tea", "200.00")), facts=facts(), now=NOW, rules=rules)

    assert evaluate_coupon(held, rules.coupons["first-brew-15"], ctx).eligible


def test_a_wallet_coupon_no_longer_in_the_program_is_not_eligible(rules: ProgramRules) -> None:
    ctx = EligibilityContext(cart=cart(line("tea", "200.00")), facts=facts(), now=NOW, rules=rules)

    evaluation = evaluate_coupon(entry("retired-coupon"), None, ctx)

    assert not evaluation.eligible
    assert _texts(rules, evaluation, "en") == ["This coupon is no longer offered"]
