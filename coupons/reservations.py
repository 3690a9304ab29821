"""Checkout reservations: an order's codes (:func:`coupons.checkout.reserve_codes`) and points
(:func:`loyalty.holds.hold_points`) held together until a time, under one id.

Both run in the caller's transaction: if either is refused, nothing is held. Reserving again for
the same order replaces what it held and closes the previous reservation, so releasing that one
later frees nothing of the new one. A release is idempotent; a lapsed reservation needs none
(its codes are freed by the next use of their coupon or the jobs, its points stop counting).
The ``coupons.release_reservations`` job marks lapsed reservations released
(:func:`close_lapsed_reservations`), and ``loyalty.points.drop_lapsed_holds`` deletes their holds.
The redemption itself happens when the order is paid.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select, update

from coupons.carts import Cart
from coupons.checkout import DEFAULT_RESERVATION_TTL, release_order, reserve_codes
from coupons.errors import UnknownReservation
from coupons.tables import checkout_reservations
from loyalty.holds import hold_points, release_points_hold

r = checkout_reservations.c
ZERO = Decimal("0.00")


def new_reservation_id() -> str:
    return f"rsv_{secrets.token_hex(12)}"


@dataclass(frozen=True)
class CheckoutReservation:
    reservation_id: str
    order_id: str
    member_id: str
    codes: Mapping[str, Decimal]  # code → its share of the discount
    discount: Decimal
    points: int
    points_value: Decimal
    held_until: datetime
    created_at: datetime
    released_at: datetime | None = None

    def status(self, now: datetime) -> str:
        if self.released_at is not None:
            return "released"
        return "held" if self.held_until > now else "lapsed"

    @classmethod
    def from_row(cls, row: Any) -> CheckoutReservation:
        return cls(
            reservation_id=row.reservation_id,
            order_id=row.order_id,
            member_id=row.member_id,
            codes={code: Decimal(share) for code, share in row.codes.items()},
            discount=row.discount,
            points=row.points,
            points_value=row.points_value,
            held_until=row.held_until,
            created_at=row.created_at,
            released_at=row.released_at,
        )


def reserve_checkout(
    conn: Connection,
    program: Any,
    *,
    member_id: str,
    order_id: str,
    cart: Cart,
    codes: Sequence[str],
    points: int,
    now: datetime,
    ttl: timedelta = DEFAULT_RESERVATION_TTL,
    new_id: Callable[[], str] = new_reservation_id,
) -> CheckoutReservation:
    """Hold the codes, then the points (on the total left after the codes' discount), for the
    order until ``now + ttl``; raises CheckoutRefused or a PointsError, and then nothing is
    held once the caller's transaction rolls back."""
    _close_order(conn, order_id, now=now)
    held = reserve_codes(
        conn, program, member_id=member_id, order_id=order_id, cart=cart, codes=codes,
        now=now, ttl=ttl,
    )  # fmt: skip
    value = ZERO
    if points:
        left = max(ZERO, cart.total - held.discount)
        value = hold_points(
            conn, program, member_id, points, order_id=order_id, total=left, now=now,
            until=held.until,
        ).value  # fmt: skip
    else:
        release_points_hold(conn, order_id=order_id)
    reservation = CheckoutReservation(
        reservation_id=new_id(),
        order_id=order_id,
        member_id=member_id,
        codes=dict(held.shares),
        discount=held.discount,
        points=points,
        points_value=value,
        held_until=held.until,
        created_at=now,
    )
    conn.execute(checkout_reservations.insert().values(_row(reservation)))
    return reservation


def _row(reservation: CheckoutReservation) -> dict[str, Any]:
    return {
        **vars(reservation),
        "codes": {code: str(share) for code, share in reservation.codes.items()},
    }


def _close_order(conn: Connection, order_id: str, *, now: datetime) -> None:
    conn.execute(
        update(checkout_reservations)
        .where(r.order_id == order_id, r.released_at.is_(None))
        .values(released_at=now)
    )


def fetch_reservation(conn: Connection, reservation_id: str) -> CheckoutReservation:
    row = conn.execute(
        select(checkout_reservations).where(r.reservation_id == reservation_id)
    ).first()
    if row is None:
        raise UnknownReservation(reservation_id)
    return CheckoutReservation.from_row(row)


def release_reservation(
    conn: Connection, reservation_id: str, *, now: datetime
) -> CheckoutReservation:
    """Free what the reservation holds (its codes back to their wallets, its points hold
    dropped); releasing it again, or one a newer reservation replaced, changes nothing."""
    closed = conn.execute(
        update(checkout_reservations)
        .where(r.reservation_id == reservation_id, r.released_at.is_(None))
        .values(released_at=now)
    ).rowcount
    reservation = fetch_reservation(conn, reservation_id)
    if closed:
        release_order(conn, order_id=reservation.order_id, now=now)
        release_points_hold(conn, order_id=reservation.order_id)
    return reservation


def close_lapsed_reservations(conn: Connection, *, now: datetime) -> int:
    """Mark released every reservation lapsed by ``now`` that nobody released, in one UPDATE;
    returns the count. Its codes are released by ``release_expired_reservations`` and its
    points hold by loyalty's job; reads already treat it as lapsed, so this keeps the table
    true. Idempotent: a second run, or one at the same time, finds nothing left to close."""
    closed = conn.execute(
        update(checkout_reservations)
        .where(r.released_at.is_(None), r.held_until <= now)
        .values(released_at=now)
    )
    return int(closed.rowcount)
