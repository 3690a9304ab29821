"""What a coupon takes off: pure arithmetic on the amount the coupon applies to.

Money is Decimal throughout. A percentage is rounded to the cent half-up (¥12.345 → ¥12.35,
the rounding shoppers expect on a receipt), then capped by ``max_off``. A ladder applies its
highest step reached. No discount exceeds the amount it applies to: ¥20 off a ¥15 basket of
eligible items is ¥15. Free shipping takes off the cart's shipping fee (¥0 when none is given).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from core.money import CENT
from coupons.definitions import Discount

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class LadderStep:
    min_total: Decimal
    off: Decimal


@dataclass(frozen=True)
class DiscountRule:
    """One coupon's discount, read once from its definition."""

    kind: str
    amount_off: Decimal = ZERO
    percent_off: Decimal = ZERO
    max_off: Decimal | None = None
    ladder: tuple[LadderStep, ...] = ()

    @classmethod
    def of(cls, discount: Discount) -> DiscountRule:
        """Read once, with every amount in cents already, so calculation never rounds them."""
        steps = tuple(LadderStep(s.min_total, _cents(s.off)) for s in discount.ladder or ())
        return cls(
            kind=discount.kind,
            amount_off=_cents(discount.amount_off or ZERO),
            percent_off=discount.percent_off or ZERO,
            max_off=_cents(discount.max_off) if discount.max_off is not None else None,
            ladder=steps,
        )

    @property
    def free_shipping(self) -> bool:
        return self.kind == "free_shipping"

    @property
    def threshold(self) -> Decimal | None:
        """The least amount the discount needs (a ladder's first step), if any."""
        return self.ladder[0].min_total if self.ladder else None


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT)


def calculate_discount(rule: DiscountRule, amount: Decimal, shipping: Decimal = ZERO) -> Decimal:
    """The money off ``amount`` (the eligible items' total, in cents); free shipping: off
    ``shipping``. Amounts come in cents and every discount is in cents, so no rounding is
    needed here except the percentage's."""
    if rule.kind == "amount_off":
        off = rule.amount_off
    elif rule.kind == "percent_off":
        off = percent_of(amount, rule.percent_off)
        if rule.max_off is not None and off > rule.max_off:
            off = rule.max_off
    elif rule.kind == "ladder":
        step = reached_step(rule, amount)
        off = step.off if step else ZERO
    else:
        return shipping
    return off if off <= amount else amount


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    return (amount * percent / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)


def reached_step(rule: DiscountRule, amount: Decimal) -> LadderStep | None:
    """The highest ladder step ``amount`` reaches."""
    reached = None
    for step in rule.ladder:
        if amount < step.min_total:
            break
        reached = step
    return reached


def next_step(rule: DiscountRule, amount: Decimal) -> LadderStep | None:
    """The first ladder step above ``amount``, if the ladder has one."""
    return next((step for step in rule.ladder if amount < step.min_total), None)


def describe_discount(rule: DiscountRule) -> tuple[str, dict[str, Decimal]]:
    """A reason-style (code, params) pair that says what the coupon gives."""
    if rule.kind == "amount_off":
        return "discount.amount_off", {"off": rule.amount_off}
    if rule.kind == "percent_off":
        params = {"percent": rule.percent_off}
        if rule.max_off is not None:
            return "discount.percent_off_capped", {**params, "max_off": rule.max_off}
        return "discount.percent_off", params
    if rule.kind == "ladder":
        top = rule.ladder[-1]
        return "discount.ladder", {"min_total": top.min_total, "off": top.off}
    return "discount.free_shipping", {}
