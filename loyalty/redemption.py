"""Redeeming points against an order: the rules of program.yaml (pure) and the locked write.

``points_per_unit`` points are worth one unit of the currency (100 → 1 point = 0.01 CNY); a
redemption needs at least ``min_points`` and may pay at most ``max_order_share`` of the order.
Points come from the soonest-expiring available lots first; the entry records which lots.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import Connection, select

from core.bounds import MAX_AMOUNT
from core.money import CENT
from core.program.program_file import Redeem
from loyalty.errors import (
    InsufficientPoints,
    InvalidPoints,
    OrderAlreadyRedeemed,
    RedemptionRefused,
)
from loyalty.ledger import (
    EntryDraft,
    Move,
    apply_moves,
    fetch_lots,
    insert_entry,
    lock_accounts,
    plan_draw,
)
from loyalty.limits import check_operation
from loyalty.tables import points_ledger


def points_value(points: int, rules: Redeem) -> Decimal:
    """What ``points`` are worth, rounded down to the cent."""
    return (Decimal(points) / Decimal(rules.points_per_unit)).quantize(CENT, rounding=ROUND_DOWN)


def max_points_for(total: Decimal, rules: Redeem) -> int:
    """The most points an order of ``total`` may take (``max_order_share`` of it)."""
    cap = total * Decimal(rules.max_order_share) * Decimal(rules.points_per_unit)
    return int(cap.to_integral_value(rounding=ROUND_FLOOR))


def check_redemption(points: int, total: Decimal, rules: Redeem) -> Decimal:
    """The value of a redemption that keeps the rules; raises saying which rule it breaks."""
    if points <= 0:
        raise InvalidPoints(f"redeem {points} points: give a positive number of points")
    check_operation(points, operation="redeem")
    if not 0 < total <= MAX_AMOUNT:
        raise InvalidPoints(
            f"order total {total}: give the order's total, above 0 and at most {MAX_AMOUNT}"
        )
    if points < rules.min_points:
        raise RedemptionRefused(
            f"{points} points is below the minimum of {rules.min_points} per redemption"
        )
    most = max_points_for(total, rules)
    if points > most:
        share = (Decimal(rules.max_order_share) * 100).normalize()
        raise RedemptionRefused(
            f"{points} points would pay more than {share:f}% of the order total {total}; "
            f"at most {most} points on this order"
        )
    return points_value(points, rules)


@dataclass(frozen=True)
class Redemption:
    """A recorded redemption: the entry, the value paid and the lots it drew from."""

    entry_id: int
    member_id: str
    order_id: str
    points: int
    value: Decimal
    moves: tuple[Move, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "member_id": self.member_id,
            "order_id": self.order_id,
            "points": self.points,
            "value": str(self.value),
            "lots": [{"lot_id": lot, "points": -points} for lot, points in self.moves],
        }


def redeem_points(
    conn: Connection,
    member_id: str,
    points: int,
    *,
    order_id: str,
    order_total: Decimal,
    now: datetime,
    program: Any,
) -> Redemption:
    """Redeem under the member's account lock; one redemption per order (its unique key)."""
    rules: Redeem = program.program_file.points.redeem
    value = check_redemption(points, order_total, rules)
    lock_accounts(conn, [member_id], now=now)
    return draw_redemption(
        conn,
        RedemptionDraft(member_id, order_id, points, order_total, value, at=now),
        rules=rules,
        now=now,
    )


@dataclass(frozen=True)
class RedemptionDraft:
    """A redemption the rules allowed, to draw from the lots usable ``at`` (when it was made)."""

    member_id: str
    order_id: str
    points: int
    order_total: Decimal  # what the points pay toward (the share is of it)
    value: Decimal
    at: datetime
    source_event_id: str | None = None
    details: dict[str, Any] | None = None


def draw_redemption(
    conn: Connection, redemption: RedemptionDraft, *, rules: Redeem, now: datetime
) -> Redemption:
    """Draw the points from the soonest-expiring lots usable at ``redemption.at`` and record
    the entry keyed ``redeem:{order}``; the caller holds the member's account lock. Raises
    InsufficientPoints, or OrderAlreadyRedeemed when the order already carries one."""
    r = redemption
    lots = fetch_lots(conn, r.member_id, now=r.at, available_only=True)
    moves, short = plan_draw(lots, r.points)
    if short:
        raise InsufficientPoints(r.member_id, wanted=r.points, available=r.points - short)
    draft = EntryDraft(
        member_id=r.member_id,
        kind="redeem",
        points=-r.points,
        rule_id="checkout",
        reason=f"order {r.order_id}: {r.points} points pay {r.value} of {r.order_total}",
        idempotency_key=f"redeem:{r.order_id}",
        occurred_at=r.at,
        order_id=r.order_id,
        source_event_id=r.source_event_id,
        details={
            "order_total": str(r.order_total),
            "value": str(r.value),
            "points_per_unit": rules.points_per_unit,
            **(r.details or {}),
        },
    )
    entry_id = insert_entry(conn, draft, now=now)
    if entry_id is None:
        raise OrderAlreadyRedeemed(r.order_id, points=redeemed_points(conn, r.order_id))
    apply_moves(conn, entry_id, moves)
    return Redemption(entry_id, r.member_id, r.order_id, r.points, r.value, tuple(moves))


def redeemed_points(conn: Connection, order_id: str) -> int:
    """The points the order's redemption took (0: none)."""
    query = select(points_ledger.c.points).where(
        points_ledger.c.idempotency_key == f"redeem:{order_id}"
    )
    return -int(conn.execute(query).scalar() or 0)
