"""Coupon definitions compiled into rule objects once per loaded program.

Eligibility runs at every checkout; validating models, compiling CEL and sorting tier lists
each time would cost more than the rules themselves. :func:`get_rules` builds the
:class:`ProgramRules` for a :class:`~core.program.loader.Program` on first use and keeps it as
long as that program object lives (a reloaded program is a new object, so new rules).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from core.expressions import Expression
from coupons.definitions import CouponDefinition
from coupons.discounts import DiscountRule


@dataclass(frozen=True)
class CouponRule:
    """One coupon, ready to evaluate: sets instead of lists, the threshold worked out."""

    id: str
    definition: CouponDefinition
    discount: DiscountRule
    group: str
    exclusive: bool
    tiers: tuple[str, ...]
    include: frozenset[str]
    exclude: frozenset[str]
    threshold: Decimal | None
    first_order: bool
    starts_at: datetime | None
    ends_at: datetime | None
    when: Expression | None
    when_roots: frozenset[str]
    per_member: int | None
    per_member_period: timedelta | None
    total: int | None
    budget: Decimal | None
    conditions: tuple[Callable[..., Any], ...] = ()
    limited: bool = False  # any limit: per member, total or budget
    free_shipping: bool = False


@dataclass(frozen=True)
class ProgramRules:
    """Every coupon's rule plus what rendering reasons needs from program.yaml."""

    coupons: Mapping[str, CouponRule]
    currency: str
    zone: ZoneInfo
    default_locale: str
    tier_ids: tuple[str, ...]
    tier_names: Mapping[str, Mapping[str, str]]

    @property
    def lowest_tier(self) -> str:
        return self.tier_ids[0]


def compile_coupon(definition: CouponDefinition) -> CouponRule:
    from coupons.eligibility import conditions_for

    eligibility, limits = definition.eligibility, definition.limits
    discount = DiscountRule.of(definition.discount)
    thresholds = [t for t in (eligibility.min_order_total, discount.threshold) if t is not None]
    rule = CouponRule(
        id=definition.id,
        definition=definition,
        discount=discount,
        group=definition.stacking.group,
        exclusive=definition.stacking.exclusive,
        tiers=eligibility.tiers,
        include=frozenset(eligibility.include_categories),
        exclude=frozenset(eligibility.exclude_categories),
        threshold=max(thresholds) if thresholds else None,
        first_order=eligibility.first_order,
        when=eligibility.when,
        when_roots=_roots(eligibility.when),
        per_member=limits.per_member,
        per_member_period=limits.per_member_period,
        total=limits.total,
        budget=limits.budget,
        limited=any(x is not None for x in (limits.per_member, limits.total, limits.budget)),
        free_shipping=discount.free_shipping,
        starts_at=_utc(definition.valid_between.from_ if definition.valid_between else None),
        ends_at=_utc(definition.valid_between.to if definition.valid_between else None),
    )
    return replace(rule, conditions=conditions_for(rule))


def _utc(moment: datetime | None) -> datetime | None:
    # Like every ``now``: comparing datetimes of different zones costs 10x more.
    return moment.astimezone(UTC) if moment is not None else None


def _roots(expression: Expression | None) -> frozenset[str]:
    return frozenset(expression.program.variables()) if expression else frozenset()


def compile_program(program: Any) -> ProgramRules:
    """Rules for every coupon of a loaded program (no caching: see :func:`get_rules`)."""
    info = program.program_file.program
    levels = program.program_file.tiers.levels
    return ProgramRules(
        coupons={cid: compile_coupon(definition) for cid, definition in program.coupons.items()},
        currency=info.currency,
        zone=ZoneInfo(info.timezone),
        default_locale=info.default_locale,
        tier_ids=tuple(level.id for level in levels),
        tier_names={level.id: dict(level.name) for level in levels},
    )


_cache: dict[int, tuple[weakref.ref[Any], ProgramRules]] = {}
_lock = threading.Lock()


def get_rules(program: Any) -> ProgramRules:
    """The compiled rules of ``program``, built on first use and kept while it lives."""
    key = id(program)
    cached = _cache.get(key)
    if cached is not None and cached[0]() is program:
        return cached[1]
    rules = compile_program(program)
    with _lock:
        _cache[key] = (weakref.ref(program, lambda _ref: _cache.pop(key, None)), rules)
    return rules
