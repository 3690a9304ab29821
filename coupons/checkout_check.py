"""A cart checked at checkout, holding nothing: every wallet coupon (:func:`check_eligibility`),
the codes the shopper entered, together (:func:`validate_cart`: stacking among them), the best
wallet combination, and the points the cart may take (:func:`loyalty.holds.fetch_redeemable`)
on the total left after the entered codes' discount.

Reasons are rendered in ``locale`` when given (the shop's ``Accept-Language``), else in the
member's own locale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from coupons.carts import Cart
from coupons.checkout import CartValidation, CodeCheck, validate_cart
from coupons.explain import EligibilityReport, check_eligibility
from coupons.facts import fetch_member_facts
from coupons.limits import fetch_usage
from coupons.reasons import ReasonText
from coupons.wallet import fetch_wallet
from loyalty.holds import Redeemable, fetch_redeemable

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class CheckoutCheck:
    wallet: EligibilityReport
    entered: CartValidation
    points: Redeemable
    points_requested: int
    points_total: Decimal  # what the points pay toward: the cart total less the entered codes

    def as_dict(self) -> dict[str, Any]:
        shown = self.wallet.as_dict()
        entered = {check.code for check in self.entered.checks}
        for coupon in shown["coupons"]:
            coupon["entered"] = coupon["code"] in entered
        return {
            **shown,
            "entered": {
                "codes": [self._entered(check) for check in self.entered.checks],
                "discount": str(self.entered.discount),
                "ok": self.entered.ok,
            },
            "points": self._points(),
        }

    def _entered(self, check: CodeCheck) -> dict[str, Any]:
        text = self.wallet.text
        rule = text.rules.coupons.get(check.coupon_id) if check.coupon_id else None
        return {
            "code": check.code,
            "coupon_id": check.coupon_id,
            "name": text.coupon_name(rule, check.coupon_id) if check.coupon_id else None,
            "eligible": check.eligible,
            "discount": str(check.discount),
            "reasons": [text.render(decision, rule) for decision in check.decisions],
            "reason_codes": [decision.code for decision in check.decisions],
        }

    def _points(self) -> dict[str, Any]:
        points, requested = self.points, self.points_requested
        refusal = points.refusal(requested) if requested else None
        requested_value = ZERO
        if requested and refusal is None:
            requested_value = points.value_of(requested)
        return {
            "balance": points.balance,
            "held": points.held,
            "available": points.available,
            "order_total": str(self.points_total),
            "min_points": points.rules.min_points,
            "points_per_unit": points.rules.points_per_unit,
            "most_for_order": points.most_for_total,
            "redeemable": points.points,
            "value": str(points.value),
            "requested": requested,
            "requested_value": str(requested_value),
            "requested_refusal": refusal,
        }


def check_checkout(
    conn: Connection,
    program: Any,
    *,
    member_id: str,
    cart: Cart,
    codes: Sequence[str],
    points: int,
    now: datetime,
    locale: str | None = None,
) -> CheckoutCheck:
    """Check the cart for the member (UnknownMember if no event named them); writes nothing."""
    # The wallet and the entered codes are checked against one read of the member's facts and
    # of the wallet's usage (validate_cart fetches only that of an entered code from elsewhere).
    facts = fetch_member_facts(conn, program, member_id, now=now)
    held = fetch_wallet(conn, member_id)
    usage = fetch_usage(conn, member_id, {entry.coupon_id for entry in held})
    wallet = check_eligibility(
        conn, program, member_id=member_id, cart=cart, now=now, wallet=held, facts=facts,
        usage=usage,
    )  # fmt: skip
    if locale:
        wallet = replace(wallet, text=ReasonText(wallet.text.rules, locale))
    entered = CartValidation(member_id, (), ZERO)
    if codes:
        entered = validate_cart(
            conn, program, member_id=member_id, cart=cart, codes=codes, now=now, facts=facts,
            usage=usage,
        )  # fmt: skip
    total = max(ZERO, cart.total - entered.discount)
    redeemable = fetch_redeemable(conn, program, member_id, total=total, now=now)
    return CheckoutCheck(wallet, entered, redeemable, points, total)
