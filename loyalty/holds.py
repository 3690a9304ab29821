"""Points at checkout: what a cart may take, and holds that keep them for an order.

:func:`redeemable_points` is the pure part: a member's usable balance, less what their other
checkouts hold, capped by the cart's ``max_order_share`` (points worth ``points_per_unit``
each); below ``min_points`` nothing is redeemable. :func:`hold_points` keeps points for an order
until a time, under the member's account lock, so two checkouts never count the same points. A
hold stops counting when it lapses, is released, or its order carries a redemption; it never
moves points out of lots (only the redemption does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, func, select, tuple_
from sqlalchemy.dialects import postgresql

from core.bounds import MAX_POINTS_PER_OPERATION
from core.program.program_file import Redeem
from loyalty.errors import PointsNotHeld
from loyalty.ledger import lock_accounts
from loyalty.limits import check_operation
from loyalty.redemption import check_redemption, max_points_for, points_value
from loyalty.tables import points_holds, points_ledger, points_lots

h = points_holds.c


@dataclass(frozen=True)
class Redeemable:
    """The points a member may redeem on one cart (``points``) and what they are worth."""

    balance: int  # usable now (available, unexpired lots)
    held: int  # held by the member's other checkouts
    most_for_total: int  # the cart total's max_order_share, in points
    rules: Redeem
    points: int
    value: Decimal

    @property
    def available(self) -> int:
        return max(0, self.balance - self.held)

    def value_of(self, points: int) -> Decimal:
        return points_value(points, self.rules)

    def refusal(self, points: int) -> str | None:
        """Why ``points`` cannot be redeemed on this cart (a reason code); None if they can."""
        if points < self.rules.min_points:
            return "points.below_minimum"
        if points > self.most_for_total:
            return "points.over_order_share"
        if points > self.available:
            return "points.insufficient"
        return None


def redeemable_points(*, balance: int, held: int, total: Decimal, rules: Redeem) -> Redeemable:
    """The most points a cart of ``total`` may take from what is not held; pure."""
    most_for_total = max_points_for(total, rules) if total > 0 else 0
    most = min(max(0, balance - held), most_for_total, MAX_POINTS_PER_OPERATION)
    points = most if most > 0 and most >= rules.min_points else 0
    return Redeemable(
        balance=balance,
        held=held,
        most_for_total=most_for_total,
        rules=rules,
        points=points,
        value=points_value(points, rules),
    )


def fetch_redeemable(
    conn: Connection,
    program: Any,
    member_id: str,
    *,
    total: Decimal,
    now: datetime,
    exclude_order: str = "",
) -> Redeemable:
    """:func:`redeemable_points` for the member now (``exclude_order``'s own hold not counted)."""
    return fetch_points_rows(conn, member_id).redeemable(
        program, total=total, now=now, exclude_order=exclude_order
    )


@dataclass(frozen=True)
class PointsLot:
    remaining: int
    available_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class LiveHold:
    order_id: str
    points: int
    held_until: datetime


@dataclass(frozen=True)
class PointsRows:
    """A member's points as stored, whatever the time: the lots with points left and the holds
    whose order carries no redemption. The time decides what counts (:meth:`redeemable`), so
    the rows can be kept and asked again later (the checkout read cache keeps them)."""

    lots: tuple[PointsLot, ...] = ()
    holds: tuple[LiveHold, ...] = ()

    def balance(self, now: datetime) -> int:
        """Points usable now: in lots available and not yet expired (what
        ``loyalty.limits.fetch_balances`` sums with ``usable_only``)."""
        return sum(
            lot.remaining
            for lot in self.lots
            if lot.available_at <= now and (lot.expires_at is None or lot.expires_at > now)
        )

    def held(self, now: datetime, *, exclude_order: str = "") -> int:
        """Points the live holds keep now: not lapsed, not ``exclude_order``'s."""
        return sum(
            hold.points
            for hold in self.holds
            if hold.held_until > now and hold.order_id != exclude_order
        )

    def redeemable(
        self, program: Any, *, total: Decimal, now: datetime, exclude_order: str = ""
    ) -> Redeemable:
        """:func:`redeemable_points` from these rows, as of ``now``."""
        return redeemable_points(
            balance=self.balance(now),
            held=self.held(now, exclude_order=exclude_order),
            total=total,
            rules=program.program_file.points.redeem,
        )


def fetch_points_rows(conn: Connection, member_id: str) -> PointsRows:
    """The member's :class:`PointsRows` (two statements)."""
    lots = select(
        points_lots.c.remaining, points_lots.c.available_at, points_lots.c.expires_at
    ).where(points_lots.c.member_id == member_id, points_lots.c.remaining > 0)
    holds = select(h.order_id, h.points, h.held_until).where(h.member_id == member_id, ~_redeemed())
    return PointsRows(
        lots=tuple(PointsLot(*row) for row in conn.execute(lots)),
        holds=tuple(LiveHold(*row) for row in conn.execute(holds.order_by(h.order_id))),
    )


def _redeemed() -> Any:
    """Whether the hold's order carries a redemption (then the hold counts no more)."""
    return exists().where(points_ledger.c.order_id == h.order_id, points_ledger.c.kind == "redeem")


def fetch_held(conn: Connection, member_id: str, *, now: datetime, exclude_order: str = "") -> int:
    """Points the member's live holds keep (not lapsed, their order not yet redeemed)."""
    return fetch_points_rows(conn, member_id).held(now, exclude_order=exclude_order)


@dataclass(frozen=True)
class PointsHold:
    order_id: str
    member_id: str
    points: int
    value: Decimal
    held_until: datetime


def hold_points(
    conn: Connection,
    program: Any,
    member_id: str,
    points: int,
    *,
    order_id: str,
    total: Decimal,
    now: datetime,
    until: datetime,
) -> PointsHold:
    """Hold ``points`` for the order (replacing its hold) until ``until`` on an order of
    ``total``; raises PointsNotHeld (or InvalidPoints for a total out of bounds) if they cannot
    be, and the caller's transaction rolls back."""
    rules: Redeem = program.program_file.points.redeem
    check_operation(points, operation="hold")
    lock_accounts(conn, [member_id], now=now)
    release_points_hold(conn, order_id=order_id)
    # The member's lapsed holds count no more; dropping them here keeps the table small.
    conn.execute(delete(points_holds).where(h.member_id == member_id, h.held_until <= now))
    redeemable = fetch_redeemable(conn, program, member_id, total=total, now=now)
    reason = redeemable.refusal(points)
    if reason is not None:
        raise PointsNotHeld(_refusal_text(reason, points, redeemable, total), reason=reason)
    value = check_redemption(points, total, rules)
    conn.execute(
        points_holds.insert().values(
            order_id=order_id,
            member_id=member_id,
            points=points,
            held_until=until,
            created_at=now,
        )
    )
    return PointsHold(order_id, member_id, points, value, until)


def _refusal_text(reason: str, points: int, redeemable: Redeemable, total: Decimal) -> str:
    if reason == "points.below_minimum":
        return (
            f"{points} points is below the minimum of {redeemable.rules.min_points} per redemption"
        )
    if reason == "points.over_order_share":
        share = (Decimal(redeemable.rules.max_order_share) * 100).normalize()
        return (
            f"{points} points would pay more than {share:f}% of the order total {total}; "
            f"at most {redeemable.most_for_total} points on this order"
        )
    return (
        f"{points} points asked for; the member has {redeemable.available} usable points not "
        f"held by other checkouts ({redeemable.balance} usable, {redeemable.held} held)"
    )


def release_points_hold(conn: Connection, *, order_id: str) -> int:
    """Drop the order's hold; returns the points it held (0 if there was none)."""
    released = conn.execute(
        delete(points_holds).where(h.order_id == order_id).returning(h.points)
    ).scalar()
    return int(released or 0)


def release_paid_holds(conn: Connection, paid: Sequence[tuple[str, str]]) -> int:
    """Drop the holds of paid orders, each ``(order_id, member_id)``: the checkout is over,
    whether the order redeemed the points, fewer, or none. A hold under the order's id by
    another member is not this order's and is left to lapse. One statement; returns the count."""
    if not paid:
        return 0
    pairs = sorted(set(paid))
    if conn.dialect.name != "postgresql":
        matching = tuple_(h.order_id, h.member_id).in_(pairs)
        return int(conn.execute(delete(points_holds).where(matching)).rowcount)
    # DELETE … USING unnest(orders, members): two array parameters, where a tuple IN of 500
    # pairs cost 7 times as much to send and plan, inside the batch's account locks.
    orders, members = (list(column) for column in zip(*pairs, strict=True))
    given = (
        func.unnest(
            bindparam("orders", orders, type_=postgresql.ARRAY(h.order_id.type)),
            bindparam("members", members, type_=postgresql.ARRAY(h.member_id.type)),
        )
        .table_valued("order_id", "member_id")
        .render_derived(name="paid")
    )
    statement = delete(points_holds).where(
        h.order_id == given.c.order_id, h.member_id == given.c.member_id
    )
    return int(conn.execute(statement).rowcount)


def drop_lapsed_holds(conn: Connection, *, now: datetime) -> int:
    """Delete every hold lapsed by ``now`` (one statement; housekeeping: reads already ignore
    them). Idempotent, and two runs at once delete each row once. Returns the count."""
    return int(conn.execute(delete(points_holds).where(h.held_until <= now)).rowcount)
