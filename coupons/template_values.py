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
    rules = get_rules(program)
    rule = rules.coupons.get(wallet.coupon_id)
    text = ReasonText(rules, locale)
    name = localized(rule.definition.name, text.locale, rules.default_locale) if rule else code
    return {
        "id": wallet.coupon_id,
        "name": name,
        "code": wallet.code,
        "expires_at": wallet.expires_at,
        "discount_text": text.discount_text(rule.discount) if rule else name,
    }
