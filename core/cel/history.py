"""A batch of members' facts, fetched set-based into frozen dataclasses (no rule ever queries).

:func:`fetch_histories` runs one query per table for the whole batch: the members' profile
rows, their paid orders, the refunds of those orders, and one per registered
:class:`~core.cel.sources.MemberFieldSource`. Refunds are attached to the order they refund
(joined on ``order_id``), as the tier recalculation does. Qualifying spend is net paid
(:func:`net_spend`), the one rule shared by the CEL variables and the tier ladder.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from core.cel.sources import member_sources
from core.db import in_values
from core.events.tables import members, orders, refunds

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class PaidOrder:
    """An order as spend sees it."""

    order_id: str
    paid_at: datetime
    total: Decimal


@dataclass(frozen=True)
class Refund:
    order_id: str
    amount: Decimal
    refunded_at: datetime
    event_id: str = ""


def net_spend(
    orders: Iterable[PaidOrder],
    refunds: Iterable[Refund],
    *,
    at: datetime,
    window: timedelta | None,
) -> Decimal:
    """Net paid over ``(at - window, at]`` (``window`` None: ever): orders paid in it, minus
    what was refunded of them by ``at``; an order never counts below zero."""
    refunded: dict[str, Decimal] = {}
    for refund in refunds:
        if refund.refunded_at <= at:
            refunded[refund.order_id] = refunded.get(refund.order_id, ZERO) + refund.amount
    total = ZERO
    for order in orders:
        if order.paid_at <= at and (window is None or at - window < order.paid_at):
            total += max(ZERO, order.total - refunded.get(order.order_id, ZERO))
    return total


@dataclass(frozen=True)
class Profile:
    """The member's profile row as it is now (no history of profiles is kept)."""

    registered_at: datetime | None = None
    birthday: date | None = None
    locale: str | None = None
    consent_email: bool | None = None
    consent_sms: bool | None = None
    consent_push: bool | None = None
    referred_by: str | None = None


@dataclass(frozen=True)
class MemberHistory:
    """One member's facts: profile (None: no row), orders oldest first, their refunds, and each
    registered source's facts by source name."""

    member_id: str
    profile: Profile | None = None
    orders: tuple[PaidOrder, ...] = ()
    refunds: tuple[Refund, ...] = ()
    provided: Mapping[str, Any] = field(default_factory=dict, hash=False)


def fetch_histories(
    conn: Connection, member_ids: Sequence[str], *, program: Any
) -> dict[str, MemberHistory]:
    """Every given member's history (members never seen have no profile and no orders)."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    profiles = _profiles(conn, ids)
    paid, refunded = _orders(conn, ids), _refunds(conn, ids)
    provided = {source.name: source.fetch(conn, ids, program) for source in member_sources}
    return {
        member_id: MemberHistory(
            member_id=member_id,
            profile=profiles.get(member_id),
            orders=tuple(paid[member_id]),
            refunds=tuple(refunded[member_id]),
            provided={name: facts[member_id] for name, facts in provided.items()},
        )
        for member_id in ids
    }


def _profiles(conn: Connection, ids: list[str]) -> dict[str, Profile]:
    columns = [members.c.member_id, *(members.c[name] for name in Profile.__dataclass_fields__)]
    query = select(*columns).where(in_values(conn, members.c.member_id, ids))
    names = list(Profile.__dataclass_fields__)
    return {
        row.member_id: Profile(**{name: row._mapping[name] for name in names})
        for row in conn.execute(query)
    }


def _orders(conn: Connection, ids: list[str]) -> dict[str, list[PaidOrder]]:
    query = (
        select(orders.c.member_id, orders.c.order_id, orders.c.paid_at, orders.c.total)
        .where(in_values(conn, orders.c.member_id, ids))
        .order_by(orders.c.paid_at, orders.c.order_id)
    )
    grouped: dict[str, list[PaidOrder]] = defaultdict(list)
    for row in conn.execute(query):
        grouped[row.member_id].append(PaidOrder(row.order_id, row.paid_at, Decimal(row.total)))
    return grouped


def _refunds(conn: Connection, ids: list[str]) -> dict[str, list[Refund]]:
    """The refunds of the members' orders, grouped by the order's member."""
    query = (
        select(
            orders.c.member_id,
            refunds.c.order_id,
            refunds.c.amount,
            refunds.c.refunded_at,
            refunds.c.event_id,
        )
        .select_from(refunds.join(orders, orders.c.order_id == refunds.c.order_id))
        .where(in_values(conn, orders.c.member_id, ids))
        .order_by(refunds.c.refunded_at, refunds.c.event_id)
    )
    grouped: dict[str, list[Refund]] = defaultdict(list)
    for row in conn.execute(query):
        refund = Refund(row.order_id, Decimal(row.amount), row.refunded_at, event_id=row.event_id)
        grouped[row.member_id].append(refund)
    return grouped
