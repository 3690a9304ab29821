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

SHANGHAI_18TH = datetime(2026, 11, 17, 16, 30, tzinfo=UTC)  # 00:30 on the 18th in Shanghai
SHANGHAI_17TH = datetime(2026, 11, 17, 15, 30, tzinfo=UTC)  # 23:30 on the 17th in Shanghai


def case(
    coupon_id: str,
    basket: Any,
    *,
    tier: str = "regular",
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
    # welcome-20: ¥20 off a first order of ¥100
    case("welcome-20", cart(line("home", "100.00")), discount="20.00", id="first order of 100"),
    case(
        "welcome-20",
        cart(line("home", "70.00")),
        en=("Add CN¥30.00 more to use this coupon",),
        zh=("还差 ¥30.00 即可使用",),
        id="30 short",
    ),
    case(
        "welcome-20",
        cart(line("home", "200.00")),
        paid_orders=1,
        en=("Only for your first order",),
        zh=("仅限首单使用",),
        id="not the first order",
    ),
    case(
        "welcome-20",
        cart(line("home", "200.00")),
        expires_at=NOW - timedelta(hours=1),
        en=("Expired on Nov 5, 2026",),
        zh=("已于 2026年11月5日 过期",),
        id="its 14 days are over",
    ),
    case(
        "welcome-20",
        cart(line("home", "200.00")),
        usage=used(2),
        en=("You have already used this coupon",),
        zh=("您已使用过此券",),
        id="once per member",
    ),
    case(
        "welcome-20",
        cart(line("home", "200.00")),
        status="redeemed",
        en=("Already used",),
        zh=("已使用",),
        id="this code was redeemed",
    ),
    # double11-ladder: silver and up, gift cards excluded, ¥50 off ¥300, ¥100 off ¥500
    case(
        "double11-ladder",
        cart(line("kitchen", "300.00")),
        tier="silver",
        discount="50.00",
        en=("Add CN¥200.00 more to get CN¥100.00 off",),
        zh=("再买 ¥200.00 可减 ¥100.00",),
        id="first step reached",
    ),
    case(
        "double11-ladder",
        cart(line("kitchen", "600.00"), line("gift_card", "500.00")),
        tier="gold",
        discount="100.00",
        en=("Gift cards are excluded",),
        zh=("礼品卡不参与优惠",),
        id="highest step reached",
    ),
    case(
        "double11-ladder",
        cart(line("kitchen", "250.00"), line("gift_card", "500.00")),
        tier="silver",
        en=("Gift cards are excluded", "Add CN¥50.00 more to use this coupon"),
        zh=("礼品卡不参与优惠", "还差 ¥50.00 即可使用"),
        id="gift cards do not count toward the threshold",
    ),
    case(
        "double11-ladder",
        cart(line("kitchen", "600.00")),
        en=("Only for Silver, Gold, and Diamond members",),
        zh=("仅限银牌会员、金牌会员和钻石会员使用",),
        id="regular members",
    ),
    case(
        "double11-ladder",
        cart(line("kitchen", "600.00")),
        tier="silver",
        now=datetime(2026, 10, 31, 4, tzinfo=UTC),
        en=("Valid from Nov 1, 2026",),
        zh=("2026年11月1日 起可用",),
        id="before it starts",
    ),
    case(
        "double11-ladder",
        cart(line("kitchen", "600.00")),
        tier="silver",
        now=datetime(2026, 11, 11, 16, 0, 1, tzinfo=UTC),
        en=("This offer ended on Nov 11, 2026",),
        zh=("活动已于 2026年11月11日 结束",),
        id="after it ends",
    ),
    case(
        "double11-ladder",
        cart(line("kitchen", "600.00")),
        tier="silver",
        usage=used(used=50_000),
        en=("This coupon has run out",),
        zh=("此券已被抢光",),
        id="total used up",
    ),
    case(
        "double11-ladder",
        cart(line("kitchen", "600.00")),
        tier="silver",
        usage=used(spent="1999960.00"),
        en=("This coupon has run out",),
        zh=("此券已被抢光",),
        id="budget cannot cover 100 more",
    ),
    case(
        "double11-ladder",
        cart(line("kitchen", "600.00")),
        tier="silver",
        usage=used(spent="1999900.00"),
        discount="100.00",
        id="budget covers exactly 100 more",
    ),
    case(
        "double11-ladder",
        cart(line("kitchen", "600.00")),
        tier="silver",
        usage=used(1, 2),
        en=("You have already used this coupon 2 times",),
        zh=("此券每人限用 2 次，您已用完",),
        id="twice per member",
    ),
    # cart-rescue-10: 10% off ¥150, at most ¥50
    case("cart-rescue-10", cart(line("home", "200.00")), discount="20.00", id="10 percent"),
    case("cart-rescue-10", cart(line("home", "1000.00")), discount="50.00", id="capped at 50"),
    case("cart-rescue-10", cart(line("home", "155.55")), discount="15.56", id="rounded half up"),
    case(
        "cart-rescue-10",
        cart(line("home", "120.00")),
        en=("Add CN¥30.00 more to use this coupon",),
        zh=("还差 ¥30.00 即可使用",),
        id="30 short",
    ),
    # referral-thanks-30: ¥30 off ¥99
    case("referral-thanks-30", cart(line("home", "99.00")), discount="30.00", id="exactly 99"),
    case(
        "referral-thanks-30",
        cart(line("home", "49.25", qty=2)),
        en=("Add CN¥0.50 more to use this coupon",),
        zh=("还差 ¥0.50 即可使用",),
        id="50 cents short",
    ),
    # birthday-gift: ¥50 off ¥200, once a year
    case("birthday-gift", cart(line("home", "200.00")), discount="50.00", id="200"),
    case(
        "birthday-gift",
        cart(line("home", "200.00")),
        usage=used(100),
        en=("You can use this coupon again from Jul 28, 2027",),
        zh=("2027年7月28日 后可再次使用",),
        id="used 100 days ago",
    ),
    case(
        "birthday-gift",
        cart(line("home", "200.00")),
        usage=used(400),
        discount="50.00",
        id="used 400 days ago",
    ),
    # gold-member-day: gold and diamond, on the 18th (business time), 15% off, at most ¥200
    case(
        "gold-member-day",
        cart(line("home", "1000.00")),
        tier="gold",
        now=SHANGHAI_18TH,
        discount="150.00",
        id="gold on the 18th",
    ),
    case(
        "gold-member-day",
        cart(line("home", "2000.00")),
        tier="diamond",
        now=SHANGHAI_18TH,
        discount="200.00",
        id="diamond, capped",
    ),
    case(
        "gold-member-day",
        cart(line("home", "1000.00")),
        tier="gold",
        now=SHANGHAI_17TH,
        en=("Not available right now",),
        zh=("当前不满足使用条件",),
        id="the 18th in UTC is still the 17th in Shanghai",
    ),
    case(
        "gold-member-day",
        cart(line("home", "1000.00")),
        tier="silver",
        now=SHANGHAI_18TH,
        en=("Only for Gold and Diamond members",),
        zh=("仅限金牌会员和钻石会员使用",),
        id="silver",
    ),
    # vip-exclusive-300: diamond, ¥300 off ¥2000 of home and kitchen items
    case(
        "vip-exclusive-300",
        cart(line("home", "1500.00"), line("kitchen", "600.00")),
        tier="diamond",
        discount="300.00",
        id="2100 of home and kitchen",
    ),
    case(
        "vip-exclusive-300",
        cart(line("home", "1500.00"), line("apparel", "1000.00")),
        tier="diamond",
        en=("Add CN¥500.00 more to use this coupon",),
        zh=("还差 ¥500.00 即可使用",),
        id="other categories do not count",
    ),
    case(
        "vip-exclusive-300",
        cart(line("apparel", "3000.00")),
        tier="diamond",
        en=("Only for home goods and kitchenware", "Add CN¥2,000.00 more to use this coupon"),
        zh=("仅限家居和厨房商品使用", "还差 ¥2,000.00 即可使用"),
        id="no home or kitchen items",
    ),
    case(
        "vip-exclusive-300",
        cart(line("home", "2500.00")),
        tier="gold",
        en=("Only for Diamond members",),
        zh=("仅限钻石会员使用",),
        id="gold",
    ),
    # free-shipping: the cart's shipping fee
    case(
        "free-shipping",
        cart(line("home", "10.00"), shipping="12.00"),
        discount="12.00",
        id="12 of shipping",
    ),
    case("free-shipping", cart(line("home", "10.00")), eligible=True, id="no shipping fee given"),
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
        cart=cart(line("kitchen", "600.00"), line("gift_card", "100.00")),
        facts=facts("gold"),
        now=NOW,
        rules=rules,
    )

    evaluation = evaluate_coupon(entry("double11-ladder"), rules.coupons["double11-ladder"], ctx)

    assert evaluation.eligible
    assert [d.code for d in evaluation.decisions] == ["exclude_categories.excluded"]


def test_a_code_held_for_another_order_says_until_when(rules: ProgramRules) -> None:
    held = entry("welcome-20", status="reserved")
    held = type(held)(**{**held.__dict__, "reserved_until": NOW + timedelta(minutes=10)})
    ctx = EligibilityContext(cart=cart(line("home", "200.00")), facts=facts(), now=NOW, rules=rules)

    evaluation = evaluate_coupon(held, rules.coupons["welcome-20"], ctx)

    assert not evaluation.eligible
    assert _texts(rules, evaluation, "zh-CN") == ["已被其他订单占用，2026/11/5 12:10 前不可用"]


def test_a_lapsed_hold_no_longer_blocks_the_code(rules: ProgramRules) -> None:
    held = entry("welcome-20", status="reserved")
    held = type(held)(**{**held.__dict__, "reserved_until": NOW - timedelta(minutes=1)})
    ctx = EligibilityContext(cart=cart(line("home", "200.00")), facts=facts(), now=NOW, rules=rules)

    assert evaluate_coupon(held, rules.coupons["welcome-20"], ctx).eligible


def test_a_wallet_coupon_no_longer_in_the_program_is_not_eligible(rules: ProgramRules) -> None:
    ctx = EligibilityContext(cart=cart(line("home", "200.00")), facts=facts(), now=NOW, rules=rules)

    evaluation = evaluate_coupon(entry("retired-coupon"), None, ctx)

    assert not evaluation.eligible
    assert _texts(rules, evaluation, "en") == ["This coupon is no longer offered"]
