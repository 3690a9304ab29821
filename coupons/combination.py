"""Which coupons to use together: the best valid combination under the stacking rules.

Stacking: an order takes at most one coupon per ``group``; an ``exclusive`` coupon takes no
other beside it. Each coupon's discount is worked out on the cart on its own; together they
never take off more than the cart's goods total (plus its shipping, for free shipping).

The best combination gives the member the largest total discount. Ties go, in this order, to
the one with free shipping, then to fewer coupons (keep the others for later), then to the
lexically smallest codes, so the same wallet and cart always give the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import combinations

from coupons.carts import Cart
from coupons.decisions import Decision
from coupons.eligibility import CouponEvaluation

ZERO = Decimal("0.00")
# Above this many stacking groups (a subset search only runs when the cap binds) the search
# falls back to adding groups greedily, largest discount first.
MAX_SEARCHED_GROUPS = 12


@dataclass(frozen=True)
class Combination:
    codes: tuple[str, ...]
    discount: Decimal
    free_shipping: bool

    @property
    def sort_key(self) -> tuple[Decimal, bool, int, tuple[str, ...]]:
        return (-self.discount, not self.free_shipping, len(self.codes), self.codes)


NOTHING = Combination((), ZERO, False)


def combine(chosen: Iterable[CouponEvaluation], cart: Cart) -> Combination:
    """The combination of these coupons, its total capped by what the cart has to discount."""
    goods = shipping = ZERO
    free = False
    codes = []
    for e in chosen:
        codes.append(e.entry.code)
        if e.free_shipping:
            free = True
            shipping += e.discount
        else:
            goods += e.discount
    total = min(goods, cart.total) + min(shipping, cart.shipping)
    return Combination(tuple(sorted(codes)), total, free)


def best_combination(evaluations: Sequence[CouponEvaluation], cart: Cart) -> Combination:
    """The largest discount the eligible coupons can give together (see the module doc)."""
    eligible = [e for e in evaluations if e.eligible]
    candidates = [combine([e], cart) for e in eligible if e.rule is not None and e.rule.exclusive]
    candidates.append(_best_stacked(_best_per_group(eligible), cart))
    return min(candidates, key=lambda c: c.sort_key)


def _best_per_group(eligible: Sequence[CouponEvaluation]) -> list[CouponEvaluation]:
    """In each group only the coupon with the largest discount can be in the best choice."""
    best: dict[str, CouponEvaluation] = {}
    for e in eligible:
        rule = e.rule
        if rule is None or rule.exclusive or not (e.discount or e.free_shipping):
            continue
        held = best.get(rule.group)
        if held is None or _outranks(e, held):
            best[rule.group] = e
    return sorted(best.values(), key=_rank)


def _outranks(e: CouponEvaluation, held: CouponEvaluation) -> bool:
    if e.discount != held.discount:
        return e.discount > held.discount
    if e.free_shipping != held.free_shipping:
        return e.free_shipping
    return e.entry.code < held.entry.code


def _rank(e: CouponEvaluation) -> tuple[Decimal, bool, str]:
    return (-e.discount, not e.free_shipping, e.entry.code)


def _best_stacked(per_group: list[CouponEvaluation], cart: Cart) -> Combination:
    everything = combine(per_group, cart)
    uncapped = sum((e.discount for e in per_group), ZERO)
    if everything.discount == uncapped:
        return everything  # nothing is wasted, so no smaller set can do as well
    if len(per_group) > MAX_SEARCHED_GROUPS:
        return _greedy(per_group, cart)
    subsets = (
        combine(subset, cart)
        for size in range(1, len(per_group) + 1)
        for subset in combinations(per_group, size)
    )
    return min(subsets, key=lambda c: c.sort_key)


def _greedy(per_group: list[CouponEvaluation], cart: Cart) -> Combination:
    chosen: list[CouponEvaluation] = []
    best = NOTHING
    for e in per_group:
        trial = combine([*chosen, e], cart)
        if trial.sort_key < best.sort_key:
            chosen.append(e)
            best = trial
    return best


def stacking_conflicts(evaluations: Sequence[CouponEvaluation]) -> dict[str, Decision]:
    """For coupons asked for together: which break the stacking rules (the first one named in
    a group keeps its place; an exclusive coupon cannot share the order)."""
    conflicts: dict[str, Decision] = {}
    together = [e for e in evaluations if e.rule is not None]
    if len(together) > 1:
        for e in together:
            if e.rule is not None and e.rule.exclusive:
                conflicts[e.code] = Decision(False, "stacking.exclusive")
    holders: dict[str, str] = {}
    for e in together:
        assert e.rule is not None
        holder = holders.setdefault(e.rule.group, e.code)
        if holder != e.code and e.code not in conflicts:
            conflicts[e.code] = Decision(False, "stacking.group", {"other": holder})
    return conflicts


def allocate(chosen: Sequence[CouponEvaluation], cart: Cart) -> dict[str, Decimal]:
    """Each code's share of the combination's discount: its own discount, trimmed (in code
    order) where together they would exceed what the cart has to discount."""
    left = {False: cart.total, True: cart.shipping}
    shares: dict[str, Decimal] = {}
    for e in sorted(chosen, key=lambda e: e.code):
        share = min(e.discount, left[e.free_shipping])
        left[e.free_shipping] -= share
        shares[e.code] = share
    return shares
