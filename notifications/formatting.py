"""The template filters ``money``, ``date`` and ``datetime``: Babel, in the member's locale and
time zone.

The locale, zone and currency of the message being rendered travel in a context variable, not
in the template's variables, so a template cannot read or change them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_datetime_format
from babel.numbers import format_currency


@dataclass(frozen=True)
class FormatContext:
    """How the message being rendered shows money and time."""

    locale: str
    zone: str
    currency: str


_current: ContextVar[FormatContext | None] = ContextVar("notifications_format", default=None)


@lru_cache(maxsize=256)
def babel_locale(code: str) -> Locale:
    """``zh-CN`` → Babel's zh_Hans_CN; an unknown code falls back to English."""
    try:
        return Locale.parse(code.replace("_", "-"), sep="-")
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en")


@lru_cache(maxsize=1024)
def zone(name: str | None) -> tzinfo:
    return ZoneInfo(name) if name else UTC


@contextmanager
def formatting(*, locale: str, timezone: str, currency: str) -> Iterator[FormatContext]:
    """Render inside this block to format for ``locale`` in ``timezone``."""
    context = FormatContext(locale, timezone, currency)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def _context() -> FormatContext:
    context = _current.get()
    if context is None:
        raise RuntimeError("template filters run only inside notifications.formatting()")
    return context


def to_decimal(value: Any) -> Decimal:
    """Money as an exact Decimal (a float is read through its text, never used as is)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"money needs a number, got {type(value).__name__}")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise TypeError(f"money needs a number, got {value!r}") from None


def to_instant(value: Any) -> datetime:
    """An aware datetime from a datetime or ISO-8601 text; a time without a zone is refused."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a date-time, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise TypeError(f"date-time {value.isoformat()} has no time zone")
    return value


def money_filter(value: Any) -> str:
    """``{{ cart.total | money }}`` → ¥828.00 / CN¥828.00, in the program currency."""
    context = _context()
    return _money(to_decimal(value), context.locale, context.currency)


def date_filter(value: Any) -> str:
    """``{{ coupon.expires_at | date }}`` → 2026年11月5日 / Nov 5, 2026, in the member's zone."""
    context = _context()
    if isinstance(value, date) and not isinstance(value, datetime):
        return _day(value, context.locale)
    return _instant(to_instant(value), context.zone, context.locale, with_time=False)


def datetime_filter(value: Any) -> str:
    """``{{ coupon.expires_at | datetime }}`` → Nov 5, 2026, 9:40 PM in the member's zone."""
    context = _context()
    return _instant(to_instant(value), context.zone, context.locale, with_time=True)


# Formatted values are kept: a campaign's batch shows the same coupon expiry and the same
# prices to many members, and Babel takes ~50 µs per value.
@lru_cache(maxsize=8192)
def _money(amount: Decimal, locale: str, currency: str) -> str:
    return _plain_spaces(format_currency(amount, currency, locale=babel_locale(locale)))


@lru_cache(maxsize=8192)
def _day(day: date, locale: str) -> str:
    return _plain_spaces(format_date(day, "medium", locale=babel_locale(locale)))


@lru_cache(maxsize=8192)
def _instant(instant: datetime, zone_name: str, locale: str, *, with_time: bool) -> str:
    local = instant.astimezone(zone(zone_name))
    day = format_date(local.date(), "medium", locale=babel_locale(locale))
    if not with_time:
        return _plain_spaces(day)
    clock = format_time(local.time(), "short", locale=babel_locale(locale))
    pattern = str(get_datetime_format("medium", locale=babel_locale(locale)))
    return _plain_spaces(pattern.replace("{1}", day).replace("{0}", clock))


def _plain_spaces(text: str) -> str:
    # CLDR puts no-break spaces in (9:40\u202fPM, 828,00\xa0CN¥); they would turn an SMS UCS-2.
    return text.replace("\u202f", " ").replace("\xa0", " ")


FILTERS = {"money": money_filter, "date": date_filter, "datetime": datetime_filter}
