"""Reason texts: the member's locale or the program's, a complete catalogue, Babel money."""

from __future__ import annotations

from decimal import Decimal

import pytest
from coupon_factories import with_coupons

from core.program.loader import Program
from coupons.decisions import Decision
from coupons.messages import MESSAGES
from coupons.reasons import ReasonText, resolve_locale
from coupons.rules import ProgramRules, get_rules


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("en", "en"),
        ("en-US", "en"),
        ("zh-CN", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh_Hans_CN", "zh-CN"),
        ("fr-FR", "zh-CN"),  # the program's default locale
        (None, "zh-CN"),
    ],
)
def test_the_member_locale_picks_the_catalogue(requested: str | None, expected: str) -> None:
    assert resolve_locale(requested, "zh-CN") == expected


def test_every_locale_has_every_message() -> None:
    for locale, messages in MESSAGES.items():
        assert set(messages) == set(MESSAGES["en"]), locale


def test_money_is_formatted_by_babel_in_the_locale(rules: ProgramRules) -> None:
    short = Decision(False, "min_order_total.short", {"missing": Decimal("1234.5")})

    assert ReasonText(rules, "zh-CN").render(short) == "还差 ¥1,234.50 即可使用"
    assert ReasonText(rules, "en").render(short) == "Add CN¥1,234.50 more to use this coupon"


def test_a_when_text_in_the_definition_replaces_the_generic_reason(program: Program) -> None:
    custom = with_coupons(
        program,
        {
            "id": "tuesday",
            "name": {"en": "Tuesday"},
            "discount": {"amount_off": 5},
            "eligibility": {
                "when": "now.weekday == 2",
                "when_text": {"en": "Only on Tuesdays", "zh-CN": "仅限周二使用"},
            },
        },
    )
    rules = get_rules(custom)
    failed = Decision(False, "when.not_met", {"coupon": "tuesday"})

    assert ReasonText(rules, "zh-CN").render(failed, rules.coupons["tuesday"]) == "仅限周二使用"
    assert ReasonText(rules, "en-GB").render(failed, rules.coupons["tuesday"]) == "Only on Tuesdays"


@pytest.mark.parametrize(
    ("coupon_id", "en", "zh"),
    [
        ("first-brew-15", "CN¥15.00 off", "减¥15.00"),
        ("cart-steep-12", "12% off, up to CN¥60.00", "8.8折，最高减¥60.00"),
        ("tea-day-ninety", "10% off, up to CN¥150.00", "9折，最高减¥150.00"),
        ("spring-harvest-ladder", "Up to CN¥180.00 off", "最高减¥180.00"),
        ("free-shipping", "Free shipping", "包邮"),
    ],
)
def test_a_discount_reads_as_shoppers_say_it(
    rules: ProgramRules, coupon_id: str, en: str, zh: str
) -> None:
    discount = rules.coupons[coupon_id].discount

    assert ReasonText(rules, "en").discount_text(discount) == en
    assert ReasonText(rules, "zh-CN").discount_text(discount) == zh


def test_coupon_names_fall_back_to_the_default_locale(rules: ProgramRules) -> None:
    text = ReasonText(rules, "fr")

    assert text.coupon_name(rules.coupons["free-shipping"], "free-shipping") == "包邮券"
