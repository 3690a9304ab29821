"""A batch of members' facts, fetched set-based into frozen dataclasses (no rule ever queries).

:func:`fetch_histories` runs one query per table for the whole batch: the members' profile
rows, their paid orders, the refunds of those orders, and one per registered
:class:`~core.cel.sources.MemberFieldSource`. Refunds are attached to the order they refund
(joined on ``order_id``), as the tier recalculation does. Qualifying spend is net paid
(:func:`net_spend`), the one rule shared by the CEL variables and the tier ladder.

A caller that reads ``member`` at a batch's moments passes them as :class:`Moments`: the orders
every one of those moments counts alike (paid before the first, unrefunded, inside each moment's
tier window or outside all of them) then come back summed per member, as one bundle each, and
only the few near the window's edges row by row. Every spend field comes out the same; a member
with a year of orders costs a row or two, not a row per order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Numeric,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    type_coerce,
)

from core.cel.sources import member_sources
from core.db import UtcDateTime, in_values
from core.events.tables import members, orders, refunds
from core.events.types import Event, OrderPaid

ZERO = Decimal("0.00")

# The ``member`` fields computed from the member's orders (the costly part of ``member``).
SPEND_FIELDS = frozenset({"paid_orders", "net_spend", "qualifying_spend", "days_since_last_order"})
# Those of them that read every order, not only the tier window's.
ALL_TIME_FIELDS = SPEND_FIELDS - {"qualifying_spend"}


@dataclass(frozen=True)
class PaidOrder:
    """An order as spend sees it; or, in a history fetched for :class:`Moments`, a bundle of
    ``count`` orders that every one of those moments counts alike: no ``order_id``, ``paid_at``
    the latest of them, ``total`` their sum (none of them has a refund)."""

    order_id: str
    paid_at: datetime
    total: Decimal
    count: int = 1


@dataclass(frozen=True)
class Moments:
    """The moments a caller reads ``member`` at: each in ``[first, last]``, with spend over
    ``window`` before it, and none counting an ``excluded`` order (an ``order.paid`` is judged
    without its own order)."""

    first: datetime
    last: datetime
    window: timedelta
    excluded: frozenset[str] = frozenset()

    @classmethod
    def of(cls, events: Sequence[Event], window: timedelta) -> Moments | None:
        """The moments of a batch of events (None: no events)."""
        if not events:
            return None
        paying = frozenset(e.data.order_id for e in events if isinstance(e.data, OrderPaid))
        at = [event.occurred_at for event in events]
        return cls(min(at), max(at), window, paying)


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
    moments: Moments | None = None,
) -> dict[str, MemberHistory]:
    """Every given member's history (members never seen have no profile and no orders).

    ``fields``: the ``member`` fields the caller reads (None: all); a source that supplies none
    of them is not fetched. ``moments``: the caller reads ``member`` and spend only at those;
    the orders all of them count alike are bundled, and when no all-time field is read, the
    orders outside every moment's tier window are not fetched at all. Every refund of the
    members' orders is still fetched.
    """
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    profiles = _profiles(conn, ids)
    all_time = fields is None or bool(ALL_TIME_FIELDS.intersection(fields))
    refunded = _refunds(conn, ids)
    if moments is None:
        paid = _orders(conn, ids)
    else:
        refunded_orders = {r.order_id for member in refunded.values() for r in member}
        paid = _bundled(conn, ids, moments, all_time, refunded_orders)
    sources = [s for s in member_sources if fields is None or set(s.fields) & set(fields)]
    provided = {source.name: source.fetch(conn, ids, program, moments) for source in sources}
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
    columns = [members.c[name] for name in Profile.__dataclass_fields__]  # in field order
    query = select(members.c.member_id, *columns).where(in_values(conn, members.c.member_id, ids))
    return {member_id: Profile(*fields) for member_id, *fields in conn.execute(query)}


def _orders(conn: Connection, ids: list[str]) -> dict[str, list[PaidOrder]]:
    paid_at, total = _plain(conn, orders.c.paid_at), _plain(conn, orders.c.total)
    query = (
        select(orders.c.member_id, orders.c.order_id, paid_at, total)
        .where(in_values(conn, orders.c.member_id, ids))
        .order_by(orders.c.paid_at, orders.c.order_id)
    )
    grouped: dict[str, list[PaidOrder]] = defaultdict(list)
    for member_id, order_id, paid, amount in conn.execute(query):
        grouped[member_id].append(PaidOrder(order_id, paid.astimezone(UTC), amount))
    return grouped


ALONE, OLD, MID = 0, 1, 2  # how ``_bundled`` returns an order: alone, or in one of two bundles


def _bundled(
    conn: Connection,
    ids: list[str],
    moments: Moments,
    all_time: bool,
    refunded: Collection[str],
) -> dict[str, list[PaidOrder]]:
    """The members' orders as ``moments`` read them, in one grouped statement. An order paid
    at or before ``first - window`` is outside every moment's window ("old"); one paid after
    ``last - window`` and before ``first`` is inside every one ("mid"); both kinds count as
    past at every moment, so each kind sums to one bundle per member. Orders near the window's
    edges, paid at or after ``first``, ``refunded``, or excluded come back one by one. Old
    orders are fetched only for an all-time field (``all_time``).

    Each row's test is plain comparisons and one lookup in the orders to keep apart, no
    subquery per row (an ``EXISTS`` on refunds, once the table was analysed, ran for every row
    and made the statement 5x slower)."""
    out_of_all = moments.first - moments.window
    in_all = moments.last - moments.window
    paid_at = orders.c.paid_at
    apart = sorted(set(moments.excluded).union(refunded))
    tests = [and_(paid_at > out_of_all, paid_at <= in_all), paid_at >= moments.first]
    if apart:
        tests.append(in_values(conn, orders.c.order_id, apart))
    rows = select(
        orders.c.member_id, orders.c.order_id, paid_at, orders.c.total, or_(*tests).label("alone")
    ).where(in_values(conn, orders.c.member_id, ids))
    if not all_time:
        rows = rows.where(paid_at > out_of_all)
    tested = rows.subquery()
    band = case(
        (tested.c.alone, literal(ALONE)),
        (tested.c.paid_at <= out_of_all, literal(OLD)),
        else_=literal(MID),
    )
    keyed = select(
        tested.c.member_id,
        band.label("band"),
        case((tested.c.alone, tested.c.order_id), else_=None).label("order_id"),
        tested.c.paid_at,
        tested.c.total,
    ).subquery()
    query = select(
        keyed.c.member_id,
        keyed.c.order_id,
        func.max(keyed.c.paid_at).label("paid_at"),
        func.sum(keyed.c.total).label("total"),
        func.count().label("count"),
    ).group_by(keyed.c.member_id, keyed.c.band, keyed.c.order_id)
    grouped: dict[str, list[PaidOrder]] = defaultdict(list)
    for member_id, order_id, paid, amount, count in conn.execute(query):
        grouped[member_id].append(PaidOrder(order_id or "", paid.astimezone(UTC), amount, count))
    for member_orders in grouped.values():
        member_orders.sort(key=lambda order: (order.paid_at, order.order_id))
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
