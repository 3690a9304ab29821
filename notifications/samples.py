"""Sample values for every template variable of CONTRACT.md, so ``check`` can render each text.

Values are as long as real ones tend to be (a full coupon name, a four-item cart), so the SMS
segment count ``check`` reports is close to what members will get.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from notifications.template_files import TEMPLATE_VARIABLES

SAMPLE_NOW = datetime(2026, 11, 5, 13, 40, tzinfo=UTC)


def _localized(names: dict[str, str], locale: str, fallback: str) -> str:
    return names.get(locale) or next(iter(names.values()), fallback)


def _first_name(locale: str) -> str:
    return "王小明" if locale.startswith("zh") else "Alexandra"


def _member(program: Any, locale: str, name: str, member_id: str) -> dict[str, Any]:
    levels = program.program_file.tiers.levels
    top = levels[-1]
    return {
        "id": member_id,
        "tier": top.id,
        "tier_rank": len(levels) - 1,
        "paid_orders": 12,
        "net_spend": Decimal("23456.78"),
        "qualifying_spend": Decimal("23456.78"),
        "days_since_registered": 365,
        "days_since_last_order": 120,
        "birthday_month": 11,
        "referrals": 3,
        "referred_by": "FRIEND88",
        "locale": locale,
        "consents": {"email": True, "sms": True, "push": True},
        "first_name": name,
        "tier_name": _localized(dict(top.name), locale, top.id),
        "points_balance": 12800,
    }


def _basket() -> dict[str, Any]:
    items = [
        {"sku": f"SKU-{n}", "name": name, "category": "home", "price": price, "qty": qty}
        for n, (name, price, qty) in enumerate(
            [
                ("Linen sofa cover", Decimal("328.00"), 1),
                ("Cast iron pan", Decimal("199.00"), 2),
                ("Ceramic mug set", Decimal("89.90"), 1),
                ("Bamboo cutting board", Decimal("59.00"), 3),
            ]
        )
    ]
    return {
        "total": Decimal("1139.80"),
        "item_count": 7,
        "categories": ["home", "kitchen"],
        "items": items,
    }


def _coupon(program: Any, locale: str) -> dict[str, Any]:
    definition = next(iter(program.coupons.values()), None)
    name = _localized(dict(definition.name), locale, "") if definition else "¥20 off ¥100"
    return {
        "id": definition.id if definition else "sample-coupon",
        "name": name,
        "code": "WELCOME-7Q4K-9ZP2",
        "expires_at": SAMPLE_NOW + timedelta(days=14),
        "discount_text": name,
    }


def sample_variables(program: Any, locale: str) -> dict[str, Any]:
    """Every variable CONTRACT.md lists, with plausible values in ``locale``."""
    top = program.program_file.tiers.levels[-1]
    variables: dict[str, Any] = {
        "member": _member(program, locale, _first_name(locale), "m-sample"),
        "referrer": _member(program, locale, "Benjamin", "m-referrer"),
        "referee": _member(program, locale, "Charlotte", "m-referee"),
        "cart": _basket(),
        "order": _basket(),
        "coupon": _coupon(program, locale),
        "points": {
            "awarded": 500,
            "expiring": 1200,
            "expires_at": SAMPLE_NOW + timedelta(days=30),
            "expiring_value": Decimal("12.00"),
        },
        "tier": {
            "id": top.id,
            "name": _localized(dict(top.name), locale, top.id),
            "points_multiplier": top.points_multiplier,
        },
        "referral": {"code": "ALEX8888", "link": "https://shop.example.com/r/ALEX8888"},
        "unsubscribe_url": "https://shop.example.com/unsubscribe/u1.bS1zYW1wbGUfZW1haWw.sample",
    }
    assert variables.keys() == TEMPLATE_VARIABLES.keys(), "keep samples in step with CONTRACT.md"
    return variables
