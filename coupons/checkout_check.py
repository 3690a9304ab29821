"""A cart checked at checkout, holding nothing: every wallet coupon (:func:`check_eligibility`),
the codes the shopper entered, together (:func:`validate_cart`: stacking among them), the best
wallet combination, and the points the cart may take (:meth:`loyalty.holds.PointsRows.redeemable`)
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

from core.cel.variables import VariableSettings
from coupons.carts import Cart
from coupons.checkout import CartValidation, CodeCheck, validate_cart
from coupons.checkout_reads import DATABASE, CheckoutReads
from coupons.explain import EligibilityReport, check_eligibility
from coupons.facts import member_facts
from coupons.limits import usage_of
from coupons.reasons import ReasonText
from loyalty.holds import Redeemable

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
    reads: CheckoutReads = DATABASE,
) -> CheckoutCheck:
    """Check the cart for the member (UnknownMember if no event named them); writes nothing.

    The member's rows and the wallet coupons' counters come from ``reads`` (the database, or
    the serve worker's cache of them), read once for the wallet and the entered codes; only an
    entered code from outside the wallet, and its coupon's usage, are read apart."""
    member = reads.member(conn, program, member_id)
    facts = member_facts(member.history, VariableSettings.from_program(program), now=now)
    coupon_ids = sorted({entry.coupon_id for entry in member.wallet})
    usage = usage_of(coupon_ids, reads.counters(conn, coupon_ids), member.uses)
    wallet = check_eligibility(
        conn, program, member_id=member_id, cart=cart, now=now, wallet=member.wallet,
        facts=facts, usage=usage,
    )  # fmt: skip
    if locale:
        wallet = replace(wallet, text=ReasonText(wallet.text.rules, locale))
    entered = CartValidation(member_id, (), ZERO)
    if codes:
        entered = validate_cart(
            conn, program, member_id=member_id, cart=cart, codes=codes, now=now, facts=facts,
            usage=usage, wallet=member.wallet,
        )  # fmt: skip
    total = max(ZERO, cart.total - entered.discount)
    redeemable = member.points.redeemable(program, total=total, now=now)
    return CheckoutCheck(wallet, entered, redeemable, points, total)
