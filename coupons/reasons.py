"""Reason codes as text in the member's locale: a small message catalogue, Babel for the rest.

The member's locale picks the catalogue (``en-US`` → ``en``; an unknown one → the program's
default locale, then English). Money is formatted by Babel in that locale (``¥30.00`` in
zh-CN, ``CN¥30.00`` in en: CLDR's symbol, which keeps the yuan apart from the yen), dates in
the business time zone, tier names from program.yaml and lists joined as the language joins
them ("Gold and Diamond", "金牌会员和钻石会员").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.lists import format_list
from babel.numbers import format_currency, format_decimal

from coupons.decisions import Decision
from coupons.discounts import DiscountRule, describe_discount
from coupons.messages import CATEGORY_NAMES, MESSAGES
from coupons.rules import CouponRule, ProgramRules

FALLBACK_LOCALE = "en"
_MONEY = frozenset({"missing", "min", "off", "max_off", "min_total"})
_DATES = frozenset({"starts_at", "ended_at", "expires_at", "available_at"})
_TIMES = frozenset({"until"})


def resolve_locale(requested: str | None, default: str) -> str:
    """The catalogue locale for a member: theirs, its language, the program's, then English."""
    for candidate in (requested, default):
        if not candidate:
            continue
        if candidate in MESSAGES:
            return candidate
        language = candidate.replace("_", "-").split("-")[0].lower()
        for known in MESSAGES:
            if known.split("-")[0] == language:
                return known
    return FALLBACK_LOCALE


def localized(names: Mapping[str, str], locale: str, default: str) -> str:
    """A name from a ``{locale: text}`` mapping: the locale, its language, the default, any."""
    if locale in names:
        return names[locale]
    language = locale.split("-")[0]
    same = [text for code, text in names.items() if code.split("-")[0] == language]
    return same[0] if same else names.get(default) or next(iter(names.values()))


@lru_cache(maxsize=32)
def babel_locale(locale: str) -> Locale:
    return Locale.parse(locale, sep="-")


@lru_cache(maxsize=4096)
def format_money(amount: Decimal, currency: str, locale: str) -> str:
    return format_currency(amount, currency, locale=babel_locale(locale))


@lru_cache(maxsize=4096)
def format_moment(value: datetime, zone: ZoneInfo, locale: str, *, with_time: bool) -> str:
    """A date (or date and time) in the business time zone, as the locale writes it."""
    local = value.astimezone(zone)
    if with_time:
        return format_datetime(local, format="short", tzinfo=zone, locale=babel_locale(locale))
    return format_date(local.date(), format="medium", locale=babel_locale(locale))


class ReasonText:
    """Renders reason codes for one member's locale under one program's rules."""

    def __init__(self, rules: ProgramRules, requested_locale: str | None) -> None:
        self.rules = rules
        self.locale = resolve_locale(requested_locale, rules.default_locale)
        self.messages = MESSAGES[self.locale]

    def render(self, decision: Decision, rule: CouponRule | None = None) -> str:
        if decision.code == "when.not_met" and rule is not None:
            custom = rule.definition.eligibility.when_text
            if custom:
                return localized(custom, self.locale, self.rules.default_locale)
        return self._message(decision.code, decision.params)

    def coupon_name(self, rule: CouponRule | None, fallback: str) -> str:
        if rule is None:
            return fallback
        return localized(rule.definition.name, self.locale, self.rules.default_locale)

    def discount_text(self, discount: DiscountRule) -> str:
        """What the coupon gives, e.g. "¥20.00 off" / "减¥20.00", "9折，最高减¥50.00"."""
        code, params = describe_discount(discount)
        if "percent" in params:
            zhe = (Decimal(100) - params["percent"]) / 10
            params = {**params, "zhe": zhe.normalize()}
        return self._message(code, params)

    def money(self, amount: Decimal) -> str:
        return format_money(amount, self.rules.currency, self.locale)

    def _message(self, code: str, params: Mapping[str, Any]) -> str:
        key = f"{code}.one" if params.get("limit") == 1 and f"{code}.one" in self.messages else code
        template = self.messages.get(key) or MESSAGES[FALLBACK_LOCALE].get(key, code)
        text = template.format(**{name: self._param(name, value) for name, value in params.items()})
        return text[:1].upper() + text[1:]

    def _param(self, name: str, value: Any) -> str:
        if name in _MONEY:
            return self.money(value)
        if name in _DATES or name in _TIMES:
            return self._when(value, with_time=name in _TIMES)
        if name == "tiers":
            return self._join([self._tier_name(tier) for tier in value])
        if name == "categories":
            return self._join([self._category_name(c) for c in value])
        if isinstance(value, Decimal):
            return format_decimal(value, locale=babel_locale(self.locale))
        return str(value)

    def _when(self, value: datetime | None, *, with_time: bool) -> str:
        if value is None:
            return ""
        return format_moment(value, self.rules.zone, self.locale, with_time=with_time)

    def _tier_name(self, tier: str) -> str:
        names = self.rules.tier_names.get(tier)
        return localized(names, self.locale, self.rules.default_locale) if names else tier

    def _category_name(self, category: str) -> str:
        known = CATEGORY_NAMES.get(self.locale, {})
        if category in known:
            return known[category]
        words = category.replace("_", " ")
        return f"{words} items" if self.locale.startswith("en") else words

    def _join(self, items: Sequence[str]) -> str:
        return format_list(list(items), locale=babel_locale(self.locale))
