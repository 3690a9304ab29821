"""Moving codes between states in the database, each move one conditional statement.

A use (a reservation, or a redemption without one) takes, in this order, the code row (``WHERE
status = 'issued'``), a member slot and the coupon's counters; if a later step finds no room,
the earlier ones are undone in the same transaction, so the caller never sees half a use and
an event handler can carry on with the next code.

Releases lock the rows they move in code order and give back coupon by coupon in id order,
the order claims lock in. The jobs and order releases skip rows another transaction holds
(``FOR UPDATE SKIP LOCKED``: someone is already releasing them); the release a reservation
does first, of its coupons' lapsed holds, waits for them instead, so that once it returns the
share those holds had is free and the reservation can count on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from coupons.limits import (
    CHUNK,
    Held,
    free_member_slot,
    give_back,
    take_counter,
    take_member_slot,
)
from coupons.rules import CouponRule
from coupons.snapshots import ISSUED, REDEEMED, RESERVED, WalletCoupon
from coupons.tables import coupon_codes

c = coupon_codes.c
ZERO = Decimal("0.00")


def claim_use(
    conn: Connection,
    rule: CouponRule,
    entry: WalletCoupon,
    *,
    member_id: str,
    order_id: str,
    discount: Decimal,
    now: datetime,
    until: datetime | None,
) -> str | None:
    """Reserve the code for the order until ``until`` (None: redeem it now). Returns None on
    success, else the reason code of the refusal, with nothing changed."""
    if not _take_code(conn, entry.code, member_id, order_id, discount, now, until):
        return "code.unavailable"
    if not take_member_slot(conn, rule, member_id, entry.code, now):
        _undo_claim(conn, entry, now)
        return "limits.per_member"
    if not take_counter(conn, rule, discount):
        free_member_slot(conn, entry.code)
        _undo_claim(conn, entry, now)
        return "limits.sold_out"
    return None


def _take_code(
    conn: Connection,
    code: str,
    member_id: str,
    order_id: str,
    discount: Decimal,
    now: datetime,
    until: datetime | None,
) -> bool:
    """Move an unused, unexpired code of this member (or unclaimed) to the order."""
    values: dict[str, Any] = {
        "status": RESERVED if until is not None else REDEEMED,
        "member_id": member_id,
        "order_id": order_id,
        "reserved_until": until,
        "discount": discount,
        "redeemed_at": None if until is not None else now,
        "updated_at": now,
    }
    mine = or_(c.member_id == member_id, c.member_id.is_(None))
    unexpired = or_(c.expires_at.is_(None), c.expires_at > now)
    taken = conn.execute(
        update(coupon_codes)
        .where(c.code == code, c.status == ISSUED, mine, unexpired)
        .values(**values)
    )
    return taken.rowcount == 1


def _undo_claim(conn: Connection, entry: WalletCoupon, now: datetime) -> None:
    conn.execute(
        update(coupon_codes)
        .where(c.code == entry.code)
        .values(
            status=ISSUED,
            member_id=entry.member_id,
            order_id=None,
            reserved_until=None,
            discount=None,
            redeemed_at=None,
            updated_at=now,
        )
    )


def redeem_reserved(conn: Connection, code: str, *, order_id: str, now: datetime) -> bool:
    """Turn the order's reservation of ``code`` into a redemption (even if the hold lapsed
    moments ago but nobody released it: the shop already gave the discount)."""
    result = conn.execute(
        update(coupon_codes)
        .where(c.code == code, c.status == RESERVED, c.order_id == order_id)
        .values(status=REDEEMED, reserved_until=None, redeemed_at=now, updated_at=now)
    )
    return result.rowcount == 1


def release_where(
    conn: Connection, condition: ColumnElement[bool], *, now: datetime, wait: bool = False
) -> list[str]:
    """Release every reservation matching ``condition`` (in chunks); returns the codes.
    ``wait``: wait for rows another transaction holds instead of skipping them."""
    released: list[str] = []
    while True:
        found, held = _move_chunk(
            conn,
            [c.status == RESERVED, condition],
            {"status": ISSUED, "order_id": None, "reserved_until": None, "discount": None},
            now=now,
            wait=wait,
        )
        released += [code for code, _, _ in held]
        give_back(conn, held)
        if found < CHUNK:
            return released


def _move_chunk(
    conn: Connection,
    conditions: list[ColumnElement[bool]],
    values: dict[str, Any],
    *,
    now: datetime,
    wait: bool = False,
) -> tuple[int, list[Held]]:
    """Lock up to CHUNK rows matching ``conditions`` (skipping those another transaction holds,
    unless ``wait``), move them, and return how many were found and the uses they held (read
    before the move clears them)."""
    due = (
        select(c.code, c.coupon_id, c.discount)
        .where(*conditions)
        .order_by(c.code)
        .limit(CHUNK)
        .with_for_update(skip_locked=not wait)
    )
    before = {row.code: row for row in conn.execute(due)}
    if not before:
        return 0, []
    moved = conn.execute(
        update(coupon_codes)
        .where(c.code.in_(sorted(before)), *conditions)
        .values(**values, updated_at=now)
        .returning(c.code)
    ).scalars()
    held = [(code, before[code].coupon_id, before[code].discount or ZERO) for code in moved]
    return len(before), sorted(held)


def return_redeemed(
    conn: Connection, order_ids: Sequence[str], *, now: datetime, keep: Sequence[str] = ()
) -> list[str]:
    """Put the codes redeemed for these orders back into their wallets, unless expired or of
    a coupon in ``keep`` (ended or withdrawn); their uses are given back."""
    if not order_ids:
        return []
    conditions = [
        c.order_id.in_(sorted(order_ids)),
        c.status == REDEEMED,
        or_(c.expires_at.is_(None), c.expires_at > now),
    ]
    if keep:
        conditions.append(c.coupon_id.not_in(sorted(keep)))
    values = {"status": ISSUED, "order_id": None, "discount": None, "redeemed_at": None}
    _found, held = _move_chunk(conn, conditions, values, now=now)
    give_back(conn, held)
    return [code for code, _, _ in held]
