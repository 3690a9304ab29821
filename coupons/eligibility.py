"""Whether a wallet coupon applies to a cart, and why not: each condition returns a decision.

A condition is a pure function ``(rule, ctx, amount) -> Decision`` over fetched snapshots; it
never queries. ``Decision.code`` and ``params`` say what failed and what would make the coupon
apply (``min_order_total.short`` with ``missing=30.00``); :mod:`coupons.reasons` turns them
into text in the member's locale. A passing condition returns :data:`PASS`, or a decision with
``ok=True`` and a code of its own when it has something to tell (``exclude_categories.excluded``).

Which conditions a coupon has is data: :data:`CONDITIONS` maps each eligibility field to its
check, and :func:`conditions_for` picks the ones a definition uses, once, when rules compile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import NamedTuple

from coupons.context import EligibilityContext
from coupons.decisions import PASS, Decision
from coupons.discounts import calculate_discount, next_step, reached_step
from coupons.rules import CouponRule
from coupons.snapshots import ISSUED, NO_USAGE, RESERVED, WalletCoupon

ZERO = Decimal("0.00")


Condition = Callable[[CouponRule, EligibilityContext, Decimal], Decision]


def check_window(rule: CouponRule, ctx: EligibilityContext, amount: Decimal) -> Decision:
    if rule.starts_at is not None and ctx.now < rule.starts_at:
        return Decision(False, "valid_between.not_started", {"starts_at": rule.starts_at})
    if rule.ends_at is not None and ctx.now > rule.ends_at:
        return Decision(False, "valid_between.ended", {"ended_at": rule.ends_at})
    return PASS


def check_tiers(rule: CouponRule, ctx: EligibilityContext, amount: Decimal) -> Decision:
    if ctx.facts.tier in rule.tiers:
        return PASS
    return Decision(False, "tiers.not_member", {"tiers": rule.tiers})


def check_first_order(rule: CouponRule, ctx: EligibilityContext, amount: Decimal) -> Decision:
    return PASS if ctx.facts.first_order else Decision(False, "first_order.not_first")


def check_included(rule: CouponRule, ctx: EligibilityContext, amount: Decimal) -> Decision:
    if amount > ZERO:
        return PASS
    categories = sorted(rule.include)
    return Decision(False, "include_categories.none", {"categories": categories})


def check_excluded(rule: CouponRule, ctx: EligibilityContext, amount: Decimal) -> Decision:
    return ctx.excluded_note(rule.exclude)


def check_threshold(rule: CouponRule, ctx: EligibilityContext, amount: Decimal) -> Decision:
    assert rule.threshold is not None
    if amount >= rule.threshold:
        return PASS
    missing = rule.threshold - amount
    return Decision(False, "min_order_total.short", {"missing": missing, "min": rule.threshold})


def check_next_step(rule: CouponRule, ctx: EligibilityContext, amount: Decimal) -> Decision:
    upper = next_step(rule.discount, amount)
    if upper is None or reached_step(rule.discount, amount) is None:
        return PASS  # below the first step, check_threshold already says what is missing
    params = {"missing": upper.min_total - amount, "off": upper.off}
    return Decision(True, "ladder.next_step", params)


def check_when(rule: CouponRule, ctx: EligibilityContext, amount: Decimal) -> Decision:
    return PASS if ctx.when_holds(rule) else Decision(False, "when.not_met", {"coupon": rule.id})


CONDITIONS: tuple[tuple[Callable[[CouponRule], bool], Condition], ...] = (
    (lambda r: r.starts_at is not None or r.ends_at is not None, check_window),
    (lambda r: bool(r.tiers), check_tiers),
    (lambda r: r.first_order, check_first_order),
    (lambda r: bool(r.include), check_included),
    (lambda r: bool(r.exclude), check_excluded),
    (lambda r: r.threshold is not None, check_threshold),
    (lambda r: len(r.discount.ladder) > 1, check_next_step),
    (lambda r: r.when is not None, check_when),
)


def conditions_for(rule: CouponRule) -> tuple[Condition, ...]:
    """The checks this coupon's definition calls for, in the order reasons are shown."""
    return tuple(check for applies, check in CONDITIONS if applies(rule))


def check_code(entry: WalletCoupon, ctx: EligibilityContext) -> Decision:
    """The code itself: not used, not held for another order, not expired."""
    status = entry.effective_status(ctx.now)
    if status == ISSUED:
        return PASS
    if status == RESERVED:
        if ctx.order_id is not None and entry.order_id == ctx.order_id:
            return PASS
        return Decision(False, "code.reserved", {"until": entry.reserved_until})
    if status == "expired":
        return Decision(False, "code.expired", {"expires_at": entry.expires_at})
    return Decision(False, f"code.{status}")


def check_limits(rule: CouponRule, ctx: EligibilityContext, discount: Decimal) -> Decision:
    """Room left in the limits, as of the fetched usage (enforced again, atomically, on use)."""
    usage = ctx.usage.get(rule.id, NO_USAGE)
    if rule.per_member is not None and usage.member_uses:
        uses = usage.member_uses_since(rule.per_member_period, ctx.now)
        if len(uses) >= rule.per_member:
            if rule.per_member_period is None:
                return Decision(False, "limits.per_member", {"limit": rule.per_member})
            again = min(uses) + rule.per_member_period
            return Decision(False, "limits.per_member_period", {"available_at": again})
    if rule.total is not None and usage.used >= rule.total:
        return Decision(False, "limits.sold_out", {"limit": "total"})
    if rule.budget is not None and usage.spent + discount > rule.budget:
        return Decision(False, "limits.sold_out", {"limit": "budget"})
    return PASS


class CouponEvaluation(NamedTuple):
    """One wallet coupon against one cart: eligible or not, the discount, the reasons.
    (A named tuple: checkout builds one per wallet coupon per call, and these are cheapest.)"""

    entry: WalletCoupon
    rule: CouponRule | None
    eligible: bool
    discount: Decimal
    decisions: tuple[Decision, ...]
    free_shipping: bool = False

    @property
    def code(self) -> str:
        return self.entry.code

    @property
    def failures(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if not d.ok)


def evaluate_coupon(
    entry: WalletCoupon, rule: CouponRule | None, ctx: EligibilityContext
) -> CouponEvaluation:
    """Every condition of the coupon, its discount and its limits (the hot path: no lists or
    objects beyond the decisions that have something to say)."""
    if rule is None:
        gone = (Decision(False, "code.unknown_coupon", {"coupon": entry.coupon_id}),)
        return CouponEvaluation(entry, None, False, ZERO, gone)
    shown: list[Decision] = []
    if entry.status != ISSUED or (entry.expires_at is not None and entry.expires_at <= ctx.now):
        code = check_code(entry, ctx)
        if code is not PASS:
            shown.append(code)
    amount = ctx.amount_for(rule)
    for check in rule.conditions:
        decision = check(rule, ctx, amount)
        if decision is not PASS:
            shown.append(decision)
    discount = calculate_discount(rule.discount, amount, ctx.cart.shipping)
    if rule.limited:
        decision = check_limits(rule, ctx, discount)
        if decision is not PASS:
            shown.append(decision)
    if not shown:
        return CouponEvaluation(entry, rule, True, discount, (), rule.free_shipping)
    for decision in shown:
        if not decision.ok:
            return CouponEvaluation(entry, rule, False, ZERO, tuple(shown))
    return CouponEvaluation(entry, rule, True, discount, tuple(shown), rule.free_shipping)


def evaluate_wallet(
    wallet: Sequence[WalletCoupon], ctx: EligibilityContext
) -> tuple[CouponEvaluation, ...]:
    """Every wallet coupon against the context's cart, in wallet order."""
    rules = ctx.rules.coupons
    return tuple(evaluate_coupon(entry, rules.get(entry.coupon_id), ctx) for entry in wallet)
