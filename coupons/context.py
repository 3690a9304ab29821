"""What eligibility conditions read, gathered once per checkout call.

:class:`EligibilityContext` holds the cart, the member's facts, the time and the usage of
limits, and shares work between coupons of one call: eligible amounts per category filter,
the note about excluded categories, and each ``when:`` expression's result. CEL variables are
built only when an expression needs them; results over ``now`` and ``member`` alone are also
kept across calls.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.cel.variables import basket_variables, now_variables
from core.expressions import ExpressionError
from coupons.carts import Cart
from coupons.decisions import PASS, Decision
from coupons.facts import MemberFacts
from coupons.rules import CouponRule, ProgramRules
from coupons.snapshots import CouponUsage

log = logging.getLogger(__name__)
ZERO = Decimal("0.00")


def eligible_amount(rule: CouponRule, cart: Cart) -> Decimal:
    """What counts toward thresholds and the discount: excluded items never do."""
    if rule.include:
        return min(cart.amount_in(rule.include), cart.total)
    if rule.exclude:
        return max(cart.total - cart.amount_in(rule.exclude), ZERO)
    return cart.total


class EligibilityContext:
    """What conditions read: the cart, the member, the time, usage of limits. CEL variables
    are built only when a ``when:`` needs them, and each expression runs once per context."""

    def __init__(
        self,
        *,
        cart: Cart,
        facts: MemberFacts,
        now: datetime,
        rules: ProgramRules,
        usage: Mapping[str, CouponUsage] | None = None,
        order_id: str | None = None,
    ) -> None:
        self.cart, self.facts, self.now, self.rules = cart, facts, now, rules
        self.usage = usage or {}
        self.order_id = order_id
        self._variables: dict[str, Any] = {}
        self._results: dict[str, bool | None] = {}
        self._amounts: dict[tuple[frozenset[str], frozenset[str]], Decimal] = {}
        self._notes: dict[frozenset[str], Decision] = {}

    def excluded_note(self, excluded: frozenset[str]) -> Decision:
        """Which excluded categories the cart holds (shared by coupons excluding the same)."""
        note = self._notes.get(excluded)
        if note is None:
            present = sorted(c for c in excluded if c in self.cart.by_category)
            params = {"categories": present}
            note = Decision(True, "exclude_categories.excluded", params) if present else PASS
            self._notes[excluded] = note
        return note

    def amount_for(self, rule: CouponRule) -> Decimal:
        """The rule's eligible amount; coupons with the same category filters share it."""
        if not rule.include and not rule.exclude:
            return self.cart.total
        key = (rule.include, rule.exclude)
        amount = self._amounts.get(key)
        if amount is None:
            amount = self._amounts[key] = eligible_amount(rule, self.cart)
        return amount

    def when_holds(self, rule: CouponRule) -> bool | None:
        """The coupon's ``when:``; None when it cannot be evaluated (logged)."""
        assert rule.when is not None
        source = rule.when.source
        if source not in self._results:
            variables = {root: self._variable(root) for root in rule.when_roots}
            if rule.when_roots <= _REMEMBERED_ROOTS:
                self._results[source] = _remembered(rule, variables)
            else:
                self._results[source] = _evaluate(rule, variables)
        return self._results[source]

    def _variable(self, root: str) -> Any:
        if root not in self._variables:
            self._variables[root] = self._build(root)
        return self._variables[root]

    def _build(self, root: str) -> Any:
        if root == "member":
            return self.facts.cel()
        if root in ("cart", "order"):
            return self._variable("basket")
        if root == "basket":
            return basket_variables(self.cart.total, self.cart.lines)
        if root == "now":
            return now_variables(self.now, self.rules.zone)
        return {}  # `event`: a checkout is not an event


# Results of ``when:`` expressions over ``now`` and ``member`` only, kept across calls: the same
# hour and the same member facts give the same answer, and running CEL costs ~15 µs a time.
# (Carts are left out: freezing 20 lines would cost about what it saves.)
_REMEMBERED_ROOTS = frozenset({"now", "member"})
_REMEMBER_AT_MOST = 10_000
_remembered_results: dict[tuple[str, Any], bool | None] = {}


def _evaluate(rule: CouponRule, variables: dict[str, Any]) -> bool | None:
    assert rule.when is not None
    try:
        return rule.when.is_true(variables)
    except ExpressionError as exc:
        log.warning("coupon %s: %s", rule.id, exc)
        return None


def _remembered(rule: CouponRule, variables: dict[str, Any]) -> bool | None:
    assert rule.when is not None
    key = (rule.when.source, _freeze(variables))
    if key not in _remembered_results:
        if len(_remembered_results) >= _REMEMBER_AT_MOST:
            _remembered_results.clear()
        _remembered_results[key] = _evaluate(rule, variables)
    return _remembered_results[key]


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value
