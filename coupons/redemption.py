"""Redemption on ``order.paid`` and the refund policy on ``order.refunded``.

* The order's reserved codes are redeemed at the discount reserved. Codes the shop applied
  without reserving are redeemed if the order meets their conditions and limits; otherwise
  they are refused: the outcome carries the reason code and params, the handler records it
  (:mod:`coupons.refusals`) and the order is paid either way.
* Refunds: a fully refunded order puts its codes back in the wallet if they are still valid
  (not expired, coupon not ended) and gives back their share of the limits and budget. A
  partial refund leaves the coupon used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from core.events.tables import orders, refunds
from coupons.carts import Cart
from coupons.checkout import (
    UNKNOWN,
    may_use,
    release_lapsed_holds,
    requested_codes,
    validate_cart,
)
from coupons.decisions import Decision
from coupons.holds import claim_use, redeem_reserved, return_redeemed
from coupons.rules import CouponRule, get_rules
from coupons.snapshots import REDEEMED, RESERVED
from coupons.wallet import WalletCoupon, fetch_codes

ZERO = Decimal("0.00")
# Someone else's code is "unknown" to the member (a wallet's codes are never disclosed), but
# the shop's record says whose kind of refusal it was.
NOT_YOURS = Decision(False, "code.unknown", {"owner": "another member"})


@dataclass(frozen=True)
class RedemptionOutcome:
    code: str
    redeemed: bool
    discount: Decimal = ZERO
    reason: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    coupon_id: str | None = None

    @classmethod
    def refused(cls, code: str, decision: Decision, coupon_id: str | None) -> RedemptionOutcome:
        return cls(code, False, reason=decision.code, params=decision.params, coupon_id=coupon_id)


def redeem_order(
    conn: Connection,
    program: Any,
    *,
    member_id: str,
    order_id: str,
    codes: Sequence[str],
    cart: Cart,
    now: datetime,
    stored: Mapping[str, WalletCoupon] | None = None,
) -> list[RedemptionOutcome]:
    """Redeem the codes of a paid order: its reservations, else each code on its own merits.
    Never raises for a refused code (the order is paid); the outcomes say what happened.
    ``stored``: the codes as fetched for a whole batch (:func:`fetch_batch_codes`)."""
    wanted = requested_codes(codes)
    if stored is None:
        stored = fetch_codes(conn, [code for code in wanted if code])
    outcomes, direct = [], []
    for code in sorted(wanted):
        entry = stored.get(code)
        if entry is None:
            outcomes.append(RedemptionOutcome.refused(code, UNKNOWN, None))
        elif not may_use(entry, member_id):
            outcomes.append(RedemptionOutcome.refused(code, NOT_YOURS, entry.coupon_id))
        elif entry.order_id == order_id and entry.status in (RESERVED, REDEEMED):
            redeem_reserved(conn, code, order_id=order_id, now=now)
            outcomes.append(RedemptionOutcome(code, True, entry.discount or ZERO))
        else:
            direct.append(code)
    if direct:
        outcomes += _redeem_directly(conn, program, member_id, order_id, direct, cart, now)
    return outcomes


def fetch_batch_codes(conn: Connection, code_lists: Sequence[Sequence[str]]) -> dict[str, Any]:
    """The stored codes that any of the orders' code lists names, in one query."""
    wanted = {code for codes in code_lists for code in requested_codes(codes) if code}
    return fetch_codes(conn, sorted(wanted))


def _redeem_directly(
    conn: Connection,
    program: Any,
    member_id: str,
    order_id: str,
    codes: list[str],
    cart: Cart,
    now: datetime,
) -> list[RedemptionOutcome]:
    release_lapsed_holds(conn, codes, now=now)
    validation = validate_cart(
        conn, program, member_id=member_id, cart=cart, codes=codes, now=now, exclude_order=order_id
    )
    rules = get_rules(program).coupons
    stored = fetch_codes(conn, codes)
    outcomes = []
    for check in sorted(validation.checks, key=lambda k: (k.coupon_id or "", k.code)):
        if not check.eligible or check.coupon_id is None:
            failed = next(d for d in check.decisions if not d.ok)
            outcomes.append(RedemptionOutcome.refused(check.code, failed, check.coupon_id))
            continue
        rule = rules[check.coupon_id]
        refused = claim_use(
            conn,
            rule,
            stored[check.code],
            member_id=member_id,
            order_id=order_id,
            discount=check.discount,
            now=now,
            until=None,
        )
        if refused is None:
            outcomes.append(RedemptionOutcome(check.code, True, check.discount))
        else:
            decision = _claim_refusal(refused, rule)
            outcomes.append(RedemptionOutcome.refused(check.code, decision, rule.id))
    return outcomes


def _claim_refusal(reason: str, rule: CouponRule) -> Decision:
    """The decision for a use the database refused after validation passed (a race lost)."""
    if reason == "limits.per_member" and rule.per_member is not None:
        return Decision(False, reason, {"limit": rule.per_member})
    return Decision(False, reason)


def return_refunded_coupons(
    conn: Connection, program: Any, *, order_ids: Sequence[str], now: datetime
) -> list[str]:
    """Apply the refund policy to these orders: the fully refunded ones give their still-valid
    codes back to the wallet. Returns the codes put back."""
    refunded = select(func.coalesce(func.sum(refunds.c.amount), 0)).where(
        refunds.c.order_id == orders.c.order_id
    )
    fully = conn.execute(
        select(orders.c.order_id).where(
            orders.c.order_id.in_(sorted(set(order_ids))),
            orders.c.total <= refunded.scalar_subquery(),
            select(refunds.c.event_id).where(refunds.c.order_id == orders.c.order_id).exists(),
        )
    ).scalars()
    ended = [
        rule.id
        for rule in get_rules(program).coupons.values()
        if rule.ends_at is not None and rule.ends_at < now
    ]
    return return_redeemed(conn, list(fully), now=now, keep=ended)
