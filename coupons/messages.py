"""The message catalogue: one text per reason code and locale (``str.format`` placeholders).

Every code in ``en`` must exist in every other locale (a test checks it). Parameters arrive
already formatted for the locale by :mod:`coupons.reasons`. A ``.one`` variant is used when
``limit`` is 1. Category names: the shop's category ids have no names in the program files,
so common ones are named here; others are shown from their id.
"""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "code.unknown": "This code does not exist",
        "code.unknown_coupon": "This coupon is no longer offered",
        "code.reserved": "Held for another order until {until}",
        "code.redeemed": "Already used",
        "code.expired": "Expired on {expires_at}",
        "code.revoked": "This coupon was withdrawn",
        "valid_between.not_started": "Valid from {starts_at}",
        "valid_between.ended": "This offer ended on {ended_at}",
        "tiers.not_member": "Only for {tiers} members",
        "first_order.not_first": "Only for your first order",
        "min_order_total.short": "Add {missing} more to use this coupon",
        "include_categories.none": "Only for {categories}",
        "exclude_categories.excluded": "{categories} are excluded",
        "ladder.next_step": "Add {missing} more to get {off} off",
        "when.not_met": "Not available right now",
        "limits.per_member.one": "You have already used this coupon",
        "limits.per_member": "You have already used this coupon {limit} times",
        "limits.per_member_period": "You can use this coupon again from {available_at}",
        "limits.sold_out": "This coupon has run out",
        "stacking.group": "Cannot be used with {other}: one coupon of this kind per order",
        "stacking.exclusive": "Cannot be combined with other coupons",
        "discount.amount_off": "{off} off",
        "discount.percent_off": "{percent}% off",
        "discount.percent_off_capped": "{percent}% off, up to {max_off}",
        "discount.ladder": "Up to {off} off",
        "discount.free_shipping": "Free shipping",
    },
    "zh-CN": {
        "code.unknown": "券码不存在",
        "code.unknown_coupon": "此券已下架",
        "code.reserved": "已被其他订单占用，{until} 前不可用",
        "code.redeemed": "已使用",
        "code.expired": "已于 {expires_at} 过期",
        "code.revoked": "此券已作废",
        "valid_between.not_started": "{starts_at} 起可用",
        "valid_between.ended": "活动已于 {ended_at} 结束",
        "tiers.not_member": "仅限{tiers}使用",
        "first_order.not_first": "仅限首单使用",
        "min_order_total.short": "还差 {missing} 即可使用",
        "include_categories.none": "仅限{categories}商品使用",
        "exclude_categories.excluded": "{categories}不参与优惠",
        "ladder.next_step": "再买 {missing} 可减 {off}",
        "when.not_met": "当前不满足使用条件",
        "limits.per_member.one": "您已使用过此券",
        "limits.per_member": "此券每人限用 {limit} 次，您已用完",
        "limits.per_member_period": "{available_at} 后可再次使用",
        "limits.sold_out": "此券已被抢光",
        "stacking.group": "不能与 {other} 同时使用：同类券每单限用一张",
        "stacking.exclusive": "不可与其他优惠券同时使用",
        "discount.amount_off": "减{off}",
        "discount.percent_off": "{zhe}折",
        "discount.percent_off_capped": "{zhe}折，最高减{max_off}",
        "discount.ladder": "最高减{off}",
        "discount.free_shipping": "包邮",
    },
}

CATEGORY_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "gift_card": "gift cards",
        "home": "home goods",
        "kitchen": "kitchenware",
        "tea": "tea",
        "teaware": "teaware",
        "clay_teapot": "clay teapots",
        "apparel": "clothing",
        "beauty": "beauty products",
        "electronics": "electronics",
    },
    "zh-CN": {
        "gift_card": "礼品卡",
        "home": "家居",
        "kitchen": "厨房",
        "tea": "茶叶",
        "teaware": "茶具",
        "clay_teapot": "紫砂壶",
        "apparel": "服饰",
        "beauty": "美妆",
        "electronics": "数码",
    },
}
