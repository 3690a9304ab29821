"""A wallet code as message templates see it (``coupon`` in CONTRACT.md): the service campaigns
call to tell a member about the coupon a journey issued them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from coupons.reasons import ReasonText, localized
from coupons.rules import get_rules
from coupons.wallet import fetch_codes


def coupon_template_value(
    conn: Connection, program: Any, *, code: str, locale: str | None
) -> dict[str, Any] | None:
    """``{id, name, code, expires_at, discount_text}`` of a code in the member's locale
    (None when no such code exists)."""
    wallet = fetch_codes(conn, [code]).get(code)
    if wallet is None:
        return None
    return _value(wallet, get_rules(program), locale)


def _value(wallet: Any, rules: Any, locale: str | None) -> dict[str, Any]:
    rule = rules.coupons.get(wallet.coupon_id)
    text = ReasonText(rules, locale)
    name = (
        localized(rule.definition.name, text.locale, rules.default_locale) if rule else wallet.code
    )
    return {
        "id": wallet.coupon_id,
        "name": name,
        "code": wallet.code,
        "expires_at": wallet.expires_at,
        "discount_text": text.discount_text(rule.discount) if rule else name,
    }


def coupon_template_values(
    conn: Connection, program: Any, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """:func:`coupon_template_value` for many (code, locale) pairs, with one query."""
    wallets = fetch_codes(conn, [code for code, _ in wanted])
    rules = get_rules(program) if wallets else None
    values: dict[tuple[str, str], dict[str, Any]] = {}
    for code, locale in wanted:
        wallet = wallets.get(code)
        if wallet is not None and rules is not None:
            values[(code, locale)] = _value(wallet, rules, locale or None)
    return values
