"""Earning rules of program.yaml as pure functions: which event earns how many points, when.

* ``per_amount`` (a purchase rule): ``total / per_amount × tier multiplier × boosts``, computed
  exactly in Decimal and rounded down once, at the end. The tier is the one held before the
  order was paid.
* ``boosts``: a boost whose ``when`` holds multiplies the points of the rule it names.
* fixed ``points`` on an event, if its ``when`` holds, within its ``cap`` (awards per business
  day, week or month, counted by the time the event happened).
* Each credit becomes a lot: available after ``pending_days``, expiring per the expiry policy.

Once-only: a credit's key names what earned it, ``earn:<rule>:<what>``: the member for
``member.registered`` (a member registers once, whatever event ids the shop uses), the order for
``order.paid``, the event id otherwise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from core.cel.variables import fields_selected, member_fields_read
from core.events.types import Event
from core.expressions import Expression
from core.program.program_file import BoostRule, Expiry, FixedRule, PurchaseRule
from loyalty.calendar import expiry_instant, period_start
from loyalty.ladder import Level


@dataclass(frozen=True)
class Credit:
    """Points to credit: one ledger entry (earn or adjust) and the lot it creates."""

    member_id: str
    points: int
    rule_id: str
    reason: str
    idempotency_key: str
    occurred_at: datetime
    available_at: datetime
    expires_at: datetime | None
    kind: str = "earn"
    order_id: str | None = None
    source_event_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EarnRules:
    """The points section of program.yaml, indexed for the events it reacts to."""

    earning: tuple[PurchaseRule | FixedRule, ...]
    boosts: Mapping[str, tuple[BoostRule, ...]]
    expiry: Expiry
    zone: ZoneInfo

    @classmethod
    def from_program(cls, program: Any) -> EarnRules:
        points = program.program_file.points
        boosts: dict[str, list[BoostRule]] = {}
        for rule in points.earn:
            if isinstance(rule, BoostRule):
                boosts.setdefault(rule.boosts, []).append(rule)
        return cls(
            earning=tuple(r for r in points.earn if not isinstance(r, BoostRule)),
            boosts={target: tuple(rules) for target, rules in boosts.items()},
            expiry=points.expiry,
            zone=ZoneInfo(program.program_file.program.timezone),
        )

    def for_event(self, event_type: str) -> tuple[PurchaseRule | FixedRule, ...]:
        return tuple(rule for rule in self.earning if rule.on == event_type)

    def capped(self) -> tuple[FixedRule, ...]:
        return tuple(r for r in self.earning if isinstance(r, FixedRule) and r.cap is not None)

    def conditions(self, event_type: str) -> list[Expression]:
        """The ``when:`` of the rules for this event type and of their boosts."""
        rules = self.for_event(event_type)
        whens = [r.when for r in rules] + [b.when for r in rules for b in self.boosts.get(r.id, ())]
        return [when for when in whens if when is not None]

    def reads(self, event_type: str) -> frozenset[str]:
        """The CEL variables (``member``, ``event``…) the rules for this event type look at."""
        return frozenset(v for c in self.conditions(event_type) for v in c.program.variables())

    def member_fields(self, event_type: str) -> frozenset[str] | None:
        """The ``member`` fields those rules read (None: all of them)."""
        return member_fields_read(c.source for c in self.conditions(event_type))

    def lot_dates(self, at: datetime, *, pending_days: int = 0) -> tuple[datetime, datetime | None]:
        """When a lot earned at ``at`` becomes available, and when it expires."""
        available = at + timedelta(days=pending_days)
        if self.expiry.policy == "none" or self.expiry.days is None:
            return available, None
        return available, expiry_instant(available, self.expiry.days, self.zone)


CapKey = tuple[str, str, datetime]  # member, rule, start of the business period


class ConditionMemo:
    """Results of ``when:`` conditions, kept for one batch by the values of the fields they read.

    CEL is pure: ``member.birthday_month == now.month`` has one result per pair of those two
    values, so a batch of 1,000 orders evaluates it a few dozen times instead of 1,000 (the
    evaluation is most of an order's rule cost). A condition is kept only when it reads
    variables through single field selections of ints, strings, booleans or nulls; any other
    condition (a whole variable, a list, a double, a macro) is evaluated each time.
    """

    def __init__(self) -> None:
        self._results: dict[tuple[str, tuple[Any, ...]], bool] = {}
        self._fields: dict[str, tuple[tuple[str, str], ...] | None] = {}

    def holds(self, condition: Expression, variables: Mapping[str, Any]) -> bool:
        source = condition.source
        if source not in self._fields:
            self._fields[source] = fields_selected(source)
        key = _memo_key(self._fields[source], variables)
        if key is None:
            return condition.is_true(variables)
        result = self._results.get((source, key))
        if result is None:
            result = self._results[(source, key)] = condition.is_true(variables)
        return result


_KEPT_TYPES = (int, str, bool, type(None))  # hashing keeps them apart from each other (by type)


def _memo_key(
    fields: tuple[tuple[str, str], ...] | None, variables: Mapping[str, Any]
) -> tuple[Any, ...] | None:
    """The typed values of the fields a condition reads; None when one cannot be kept."""
    if fields is None:
        return None
    key = []
    for name, field_name in fields:
        container = variables.get(name)
        if not isinstance(container, dict) or field_name not in container:
            return None
        value = container[field_name]
        if type(value) not in _KEPT_TYPES:
            return None
        key.append((type(value), value))
    return tuple(key)


def cap_key(rule: FixedRule, member_id: str, at: datetime, zone: ZoneInfo) -> CapKey:
    assert rule.cap is not None
    return (member_id, rule.id, period_start(at, rule.cap.per, zone))


def credits_for_event(
    event: Event,
    *,
    rules: EarnRules,
    level: Level,
    variables: Mapping[str, Any],
    caps_used: Counter[CapKey],
    memo: ConditionMemo | None = None,
) -> list[Credit]:
    """The credits ``event`` earns; ``caps_used`` is updated with the capped awards made."""
    memo = memo or ConditionMemo()
    credits = []
    for rule in rules.for_event(event.type):
        if rule.when is not None and not memo.holds(rule.when, variables):
            continue
        if isinstance(rule, FixedRule) and rule.cap is not None:
            key = cap_key(rule, event.member_id, event.occurred_at, rules.zone)
            if caps_used[key] >= rule.cap.max:
                continue
            caps_used[key] += 1
        credit = _credit(event, rule, rules, level, variables, memo)
        if credit is not None:
            credits.append(credit)
    return credits


def _credit(
    event: Event,
    rule: PurchaseRule | FixedRule,
    rules: EarnRules,
    level: Level,
    variables: Mapping[str, Any],
    memo: ConditionMemo,
) -> Credit | None:
    boosts = [
        boost
        for boost in rules.boosts.get(rule.id, ())
        if boost.when is None or memo.holds(boost.when, variables)
    ]
    if isinstance(rule, PurchaseRule):
        total = getattr(event.data, "total", None)
        if total is None:
            return None
        points, details = purchase_points(Decimal(total), rule, level, boosts)
        pending_days = rule.pending_days
    else:
        points, details = fixed_points(rule, boosts)
        pending_days = 0
    if points <= 0:
        return None
    available_at, expires_at = rules.lot_dates(event.occurred_at, pending_days=pending_days)
    order_id = getattr(event.data, "order_id", None) if event.type == "order.paid" else None
    return Credit(
        member_id=event.member_id,
        points=points,
        rule_id=rule.id,
        reason=explain(rule.id, event, details, points),
        idempotency_key=f"earn:{rule.id}:{_earned_by(event)}",
        occurred_at=event.occurred_at,
        available_at=available_at,
        expires_at=expires_at,
        order_id=order_id,
        source_event_id=event.id,
        details=details,
    )


def _earned_by(event: Event) -> str:
    if event.type == "member.registered":
        return f"member:{event.member_id}"
    order_id = getattr(event.data, "order_id", None)
    return f"order:{order_id}" if event.type == "order.paid" and order_id else event.id


def purchase_points(
    total: Decimal, rule: PurchaseRule, level: Level, boosts: list[BoostRule]
) -> tuple[int, dict[str, Any]]:
    """``total / per_amount × multiplier × boosts``, exact, rounded down once."""
    multiplier = level.multiplier if rule.tier_multiplier else Decimal(1)
    exact = total / Decimal(rule.per_amount) * multiplier
    for boost in boosts:
        exact *= Decimal(boost.multiplier)
    details = {
        "order_total": str(total),
        "per_amount": str(rule.per_amount),
        "tier": level.id,
        "tier_multiplier": str(multiplier),
        "boosts": [{"rule": b.id, "multiplier": str(b.multiplier)} for b in boosts],
        "exact": format(exact.normalize(), "f"),  # 8800, never 8.8E+3
    }
    return int(exact.to_integral_value(rounding=ROUND_FLOOR)), details


def fixed_points(rule: FixedRule, boosts: list[BoostRule]) -> tuple[int, dict[str, Any]]:
    exact = Decimal(rule.points)
    for boost in boosts:
        exact *= Decimal(boost.multiplier)
    details = {
        "points": rule.points,
        "boosts": [{"rule": b.id, "multiplier": str(b.multiplier)} for b in boosts],
    }
    return int(exact.to_integral_value(rounding=ROUND_FLOOR)), details


def explain(rule_id: str, event: Event, details: Mapping[str, Any], points: int) -> str:
    """The one-line story of a credit, as members show and the ledger keep it."""
    boosts = "".join(f" × {b['multiplier']} ({b['rule']})" for b in details.get("boosts", []))
    if "order_total" in details:
        order_id = getattr(event.data, "order_id", "?")
        return (
            f"{rule_id}: order {order_id} paid {details['order_total']} / "
            f"{details['per_amount']} × {details['tier_multiplier']} ({details['tier']})"
            f"{boosts} = {details['exact']} → {points}"
        )
    return f"{rule_id}: {event.type} {event.id}: {details['points']}{boosts} → {points}"
