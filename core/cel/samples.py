"""Sample members, orders, carts, events and times that ``check`` evaluates every expression with.

The samples are built by the production builder (:func:`core.cel.variables.member_variables`)
from sample histories, so they are consistent the way real members are: the new member has no
orders, hence ``days_since_last_order`` null and ``paid_orders`` 0. An expression that fails
for one of them (division by zero, a type mismatch, comparing a null field) would fail in
production for every such member. Package fields (``tier``, ``referrals``) come from each
source's own samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.cel.history import MemberHistory, PaidOrder, Profile, Refund
from core.cel.sources import SAMPLE_MEMBERS, member_sources
from core.cel.types import (
    BOOL,
    DOUBLE,
    INT,
    STRING,
    TIMESTAMP,
    CelType,
    ListOf,
    Obj,
    event_data_type,
)
from core.cel.variables import VariableSettings, basket_variables, member_variables, now_variables

# A Wednesday, 10:00 in Shanghai: far enough from month ends that "days ago" stay in the year.
SAMPLE_AT = datetime(2026, 3, 18, 2, 0, tzinfo=UTC)
DESCRIPTIONS = {
    "new": "a new member with no orders",
    "regular": "a regular buyer",
    "top": "a top-tier member",
}


@dataclass(frozen=True)
class SampleLine:
    sku: str
    name: str
    category: str
    price: Decimal
    qty: int


SAMPLE_LINES = (
    SampleLine("SKU-1", "Sample tea", "tea", Decimal("88.00"), 2),
    SampleLine("SKU-2", "Sample pan", "kitchen", Decimal("328.00"), 1),
)
SAMPLE_TOTAL = Decimal("504.00")


def _orders(count: int, every: timedelta, total: str) -> tuple[PaidOrder, ...]:
    paid = [
        PaidOrder(f"sample-{i}", SAMPLE_AT - every * (count - i), Decimal(total))
        for i in range(count)
    ]
    return tuple(paid)


def sample_histories(program: Any) -> dict[str, MemberHistory]:
    """The three sample members' histories, by name (see SAMPLE_MEMBERS)."""
    regular = _orders(6, timedelta(days=45), "320.00")
    profiles = {
        "new": Profile(registered_at=SAMPLE_AT - timedelta(hours=2)),
        "regular": Profile(
            registered_at=SAMPLE_AT - timedelta(days=400),
            birthday=date(1990, 8, 14),
            locale=program.program_file.program.default_locale,
            consent_email=True,
            referred_by="FRIEND-1",
        ),
        "top": Profile(
            registered_at=SAMPLE_AT - timedelta(days=1200),
            birthday=date(1985, SAMPLE_AT.month, 2),
            locale=program.program_file.program.default_locale,
            consent_email=True,
            consent_sms=True,
            consent_push=True,
        ),
    }
    orders = {"new": (), "regular": regular, "top": _orders(40, timedelta(days=9), "2500.00")}
    refunds = {"regular": (Refund(regular[-1].order_id, Decimal("20.00"), SAMPLE_AT),)}
    return {
        name: MemberHistory(
            member_id=f"sample-{name}",
            profile=profiles[name],
            orders=orders[name],
            refunds=refunds.get(name, ()),
            provided={source.name: source.sample(program, name) for source in member_sources},
        )
        for name in SAMPLE_MEMBERS
    }


def sample_variables(program: Any, event_type: str | None) -> dict[str, dict[str, Any]]:
    """Every variable for each sample member, by member name: the scope picks what it sees."""
    settings = VariableSettings.from_program(program)
    basket = basket_variables(SAMPLE_TOTAL, SAMPLE_LINES)
    shared = {
        "now": now_variables(SAMPLE_AT, settings.zone),
        "order": basket,
        "cart": basket,
        "event": {
            "type": event_type or "sample.event",
            "occurred_at": SAMPLE_AT,
            "data": sample_value(event_data_type(event_type)),
        },
    }
    return {
        name: {**shared, "member": member_variables(history, settings, at=SAMPLE_AT)}
        for name, history in sample_histories(program).items()
    }


_SCALARS: dict[CelType, Any] = {
    STRING: "sample",
    INT: 1,
    DOUBLE: 100.0,
    BOOL: True,
    TIMESTAMP: SAMPLE_AT,
}


def sample_value(kind: CelType) -> Any:
    """A plausible value of a type (event data): text, 1, 100.0, true, one list item."""
    if isinstance(kind, Obj):
        return {name: sample_value(field) for name, field in kind.fields.items()}
    if isinstance(kind, ListOf):
        return [sample_value(kind.item)]
    return _SCALARS.get(kind, {})
