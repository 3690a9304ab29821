"""``coupons eligible``: every wallet coupon against a cart, with reasons, and the best choice.

:func:`explain_wallet` is the pure part (the checkout hot path and the benchmark call it);
:func:`check_eligibility` fetches the snapshots, calls it and wraps the result in a report that
renders reasons in the member's locale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from core.events.tables import carts
from coupons.carts import Cart, parse_cart
from coupons.combination import Combination, best_combination
from coupons.context import EligibilityContext
from coupons.eligibility import CouponEvaluation, evaluate_wallet
from coupons.facts import MemberFacts, fetch_member_facts
from coupons.limits import fetch_usage
from coupons.reasons import ReasonText
from coupons.rules import ProgramRules, get_rules
from coupons.snapshots import CouponUsage, WalletCoupon
from coupons.wallet import expiry_for, fetch_wallet


def explain_wallet(
    rules: ProgramRules,
    *,
    wallet: Sequence[WalletCoupon],
    cart: Cart,
    facts: MemberFacts,
    usage: Mapping[str, CouponUsage],
    now: datetime,
) -> tuple[tuple[CouponEvaluation, ...], Combination]:
    """Each wallet coupon's evaluation and the best valid combination; pure."""
    ctx = EligibilityContext(cart=cart, facts=facts, now=now, rules=rules, usage=usage)
    evaluations = evaluate_wallet(wallet, ctx)
    return evaluations, best_combination(evaluations, cart)


@dataclass(frozen=True)
class EligibilityReport:
    member_id: str
    cart: Cart
    evaluations: tuple[CouponEvaluation, ...]
    best: Combination
    text: ReasonText
    now: datetime

    def reasons(self, evaluation: CouponEvaluation) -> list[str]:
        return [self.text.render(d, evaluation.rule) for d in evaluation.decisions]

    def ordered(self) -> list[CouponEvaluation]:
        """Eligible first, largest discount first, then by code."""
        return sorted(self.evaluations, key=lambda e: (not e.eligible, -e.discount, e.code))

    def as_dict(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "locale": self.text.locale,
            "currency": self.text.rules.currency,
            "cart": {"total": str(self.cart.total), "items": self.cart.item_count},
            "coupons": [self._coupon(e) for e in self.ordered()],
            "best": {
                "codes": list(self.best.codes),
                "discount": str(self.best.discount),
                "free_shipping": self.best.free_shipping,
            },
        }

    def _coupon(self, e: CouponEvaluation) -> dict[str, Any]:
        return {
            "coupon_id": e.entry.coupon_id,
            "code": e.code,
            "name": self.text.coupon_name(e.rule, e.entry.coupon_id),
            "status": e.entry.effective_status(self.now),
            "expires_at": e.entry.expires_at,
            "eligible": e.eligible,
            "discount": str(e.discount),
            "free_shipping": e.free_shipping,
            "reasons": self.reasons(e),
            "reason_codes": [d.code for d in e.decisions],
        }


def check_eligibility(
    conn: Connection,
    program: Any,
    *,
    member_id: str,
    cart: Cart,
    now: datetime,
    wallet: Sequence[WalletCoupon] | None = None,
    facts: MemberFacts | None = None,
    usage: Mapping[str, CouponUsage] | None = None,
) -> EligibilityReport:
    """Fetch the member's wallet, facts and usage, then explain every coupon for the cart
    (``wallet``, ``facts`` and ``usage`` when given are the member's as of ``now``, fetched
    already; ``usage`` then covers the wallet's coupons)."""
    if wallet is None:
        wallet = fetch_wallet(conn, member_id)
    return _report(
        conn, program, member_id=member_id, wallet=wallet, cart=cart, now=now, facts=facts,
        usage=usage,
    )  # fmt: skip


def preview_eligibility(
    conn: Connection, program: Any, *, member_id: str, cart: Cart, now: datetime
) -> EligibilityReport:
    """As :func:`check_eligibility`, for a wallet holding one of every coupon issued ``now``
    (codes are the coupon ids; nothing is stored): what each coupon would say to the member."""
    wallet = [
        WalletCoupon(
            code=coupon_id,
            coupon_id=coupon_id,
            member_id=member_id,
            status="issued",
            issued_at=now,
            expires_at=expiry_for(definition, now),
        )
        for coupon_id, definition in sorted(program.coupons.items())
    ]
    return _report(conn, program, member_id=member_id, wallet=wallet, cart=cart, now=now)


def _report(
    conn: Connection,
    program: Any,
    *,
    member_id: str,
    wallet: Sequence[WalletCoupon],
    cart: Cart,
    now: datetime,
    facts: MemberFacts | None = None,
    usage: Mapping[str, CouponUsage] | None = None,
) -> EligibilityReport:
    rules = get_rules(program)
    if facts is None:
        facts = fetch_member_facts(conn, program, member_id, now=now)
    if usage is None:
        usage = fetch_usage(conn, member_id, {entry.coupon_id for entry in wallet})
    evaluations, best = explain_wallet(
        rules, wallet=wallet, cart=cart, facts=facts, usage=usage, now=now
    )
    text = ReasonText(rules, facts.locale)
    return EligibilityReport(member_id, cart, evaluations, best, text, now)


def explain_newest_cart(
    conn: Connection, program: Any, *, now: datetime
) -> tuple[str, EligibilityReport, bool] | None:
    """For the demo: the newest open cart's member, their wallet against it (or, with an empty
    wallet, every coupon as if issued now: the last item says so). None when no cart is open."""
    query = (
        select(carts.c.cart_id, carts.c.member_id, carts.c["items"])
        .where(carts.c.converted_at.is_(None))
        .order_by(carts.c.updated_at.desc(), carts.c.cart_id)
        .limit(1)
    )
    row = conn.execute(query).first()
    if row is None:
        return None
    cart = parse_cart({"items": row.items})
    preview = not fetch_wallet(conn, row.member_id)
    explain = preview_eligibility if preview else check_eligibility
    report = explain(conn, program, member_id=row.member_id, cart=cart, now=now)
    return row.cart_id, report, preview
