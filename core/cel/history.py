"""A batch of members' facts, fetched set-based into frozen dataclasses (no rule ever queries).

:func:`fetch_histories` runs one query per table for the whole batch: the members' profile
rows, their paid orders, the refunds of those orders, and one per registered
:class:`~core.cel.sources.MemberFieldSource`. Refunds are attached to the order they refund
(joined on ``order_id``), as the tier recalculation does. Qualifying spend is net paid
(:func:`net_spend`), the one rule shared by the CEL variables and the tier ladder.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, DateTime, Numeric, select, type_coerce

from core.cel.sources import member_sources
from core.db import UtcDateTime, in_values
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
    start = None if window is None else at - window
    total = ZERO
    for order in orders:  # called per event of a batch: the loop is kept lean
        paid_at = order.paid_at
        if paid_at <= at and (start is None or start < paid_at):
            owed = order.total - refunded.get(order.order_id, ZERO) if refunded else order.total
            total += max(ZERO, owed)
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
    conn: Connection,
    member_ids: Sequence[str],
    *,
    program: Any,
    fields: Collection[str] | None = None,
    orders_after: datetime | None = None,
) -> dict[str, MemberHistory]:
    """Every given member's history (members never seen have no profile and no orders).

    ``fields``: the ``member`` fields the caller reads (None: all); a source that supplies none
    of them is not fetched. ``orders_after``: only orders paid after it are fetched, for a
    caller that reads spend over a window ending after it (``qualifying_spend``, the tier
    ladder) and no all-time field; every refund of the members' orders is still fetched.
    """
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    profiles = _profiles(conn, ids)
    paid, refunded = _orders(conn, ids, orders_after), _refunds(conn, ids)
    sources = [s for s in member_sources if fields is None or set(s.fields) & set(fields)]
    provided = {source.name: source.fetch(conn, ids, program) for source in sources}
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


def _orders(conn: Connection, ids: list[str], after: datetime | None) -> dict[str, list[PaidOrder]]:
    paid_at, total = _plain(conn, orders.c.paid_at), _plain(conn, orders.c.total)
    query = (
        select(orders.c.member_id, orders.c.order_id, paid_at, total)
        .where(in_values(conn, orders.c.member_id, ids))
        .order_by(orders.c.paid_at, orders.c.order_id)
    )
    if after is not None:
        query = query.where(orders.c.paid_at > after)
    grouped: dict[str, list[PaidOrder]] = defaultdict(list)
    for member_id, order_id, paid, amount in conn.execute(query):
        grouped[member_id].append(PaidOrder(order_id, paid.astimezone(UTC), amount))
    return grouped


def _plain(conn: Connection, column: Any) -> Any:
    """On PostgreSQL a timestamp or money column read as the driver returns it (aware
    datetimes; NUMERIC(18, 2) decimals, already exact to the cent), without the column type's
    per-value conversion: a batch reads thousands of orders. SQLite needs the conversion."""
    if conn.dialect.name != "postgresql":
        return column
    plain = DateTime(timezone=True) if isinstance(column.type, UtcDateTime) else Numeric(18, 2)
    return type_coerce(column, plain).label(column.name)


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
