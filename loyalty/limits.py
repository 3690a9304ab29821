"""The points bounds (core.bounds) applied: per operation, and per member's balance.

An operator's adjustment, a campaign's award and a redemption name their points, so beyond a
bound they are refused with :class:`~loyalty.errors.PointsLimitExceeded`. What a rule earns is
computed, not asked for: an earn beyond a bound is cut to it (a decision, not an error), and
its entry records in ``details`` how many points were withheld and why.

The balance a member holds, for the ceiling, is every point in lots not yet expired, pending
ones included: what ``members show`` lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection, func, or_, select

from core.bounds import MAX_POINTS_BALANCE, MAX_POINTS_PER_OPERATION
from core.db import in_values
from loyalty.earning import Credit
from loyalty.errors import PointsLimitExceeded
from loyalty.ledger import chunked
from loyalty.tables import points_lots


def check_operation(points: int, *, operation: str) -> None:
    """Refuse an operation that moves more than MAX_POINTS_PER_OPERATION points either way."""
    if abs(points) > MAX_POINTS_PER_OPERATION:
        raise PointsLimitExceeded(
            f"{operation} {points} points: one operation moves at most "
            f"{MAX_POINTS_PER_OPERATION:,} points; check the number, or split it into "
            "several operations",
            points=points,
            limit=MAX_POINTS_PER_OPERATION,
        )


def check_balance_room(
    conn: Connection, member_id: str, points: int, *, now: datetime, operation: str
) -> None:
    """Refuse a credit that would take the member past MAX_POINTS_BALANCE (the caller holds
    the member's account lock, so the balance cannot change before the credit is written)."""
    held = fetch_balances(conn, [member_id], now=now).get(member_id, 0)
    if held + points > MAX_POINTS_BALANCE:
        raise PointsLimitExceeded(
            f"{operation} {points} points: member {member_id!r} holds {held:,} points and a "
            f"member holds at most {MAX_POINTS_BALANCE:,}; at most "
            f"{max(0, MAX_POINTS_BALANCE - held):,} more can be credited",
            points=points,
            limit=MAX_POINTS_BALANCE,
        )


def fetch_balances(
    conn: Connection, member_ids: Sequence[str], *, now: datetime, usable_only: bool = False
) -> dict[str, int]:
    """Each member's points in lots not yet expired, pending included unless ``usable_only``
    (then the balance ``fetch_points`` shows); members without any: absent."""
    balances: dict[str, int] = {}
    for part in chunked(sorted(set(member_ids))):
        query = (
            select(points_lots.c.member_id, func.sum(points_lots.c.remaining))
            .where(
                in_values(conn, points_lots.c.member_id, part),
                points_lots.c.remaining > 0,
                or_(points_lots.c.expires_at.is_(None), points_lots.c.expires_at > now),
                *([points_lots.c.available_at <= now] if usable_only else []),
            )
            .group_by(points_lots.c.member_id)
        )
        balances.update((member_id, int(points)) for member_id, points in conn.execute(query))
    return balances


def fit_credits(credits: Sequence[Credit], balances: Mapping[str, int]) -> list[Credit]:
    """Each credit, in order, cut to what one operation may move and to the room left under its
    member's balance ceiling; a cut credit records the points withheld and the bound."""
    held = dict(balances)
    fitted = []
    for credit in credits:
        room = max(0, MAX_POINTS_BALANCE - held.get(credit.member_id, 0))
        points = max(0, min(credit.points, MAX_POINTS_PER_OPERATION, room))
        held[credit.member_id] = held.get(credit.member_id, 0) + points
        fitted.append(credit if points == credit.points else _cut(credit, points, room))
    return fitted


def _cut(credit: Credit, points: int, room: int) -> Credit:
    bound = (
        f"{MAX_POINTS_PER_OPERATION:,} points per operation"
        if points < room
        else f"a balance of {MAX_POINTS_BALANCE:,} points per member"
    )
    withheld = credit.points - points
    return replace(
        credit,
        points=points,
        reason=f"{credit.reason} ({withheld:,} points withheld: at most {bound})",
        details={**credit.details, "withheld": withheld, "withheld_by": bound},
    )
