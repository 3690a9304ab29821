"""The ledger invariant, for operators (``points verify``) and for every test.

1. Each lot: ``0 <= remaining <= points`` and ``remaining = points + Σ moves - expired_points``.
2. Each entry other than ``expire``: its points equal the lot it created plus its moves.
3. Each member's expire entries of one run equal the points that run expired from their lots.
4. Each member: the entries sum to the lots' remaining points, the debt entries sum to the
   account's debt, and the debt is never negative.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, literal, or_, select, union_all

from loyalty.tables import points_accounts, points_ledger, points_lots, points_moves


@dataclass(frozen=True)
class Problem:
    """One place where the ledger and the lots disagree."""

    member_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.member_id}: {self.message}"


def verify_ledger(conn: Connection) -> list[Problem]:
    """Every violation of the invariant; an empty list means the ledger is sound."""
    return _lots(conn) + _entries(conn) + _expiries(conn) + _members(conn)


def _lots(conn: Connection) -> list[Problem]:
    moved = (
        select(points_moves.c.lot_id, func.sum(points_moves.c.points).label("moved"))
        .group_by(points_moves.c.lot_id)
        .subquery()
    )
    expected = points_lots.c.points + func.coalesce(moved.c.moved, 0) - points_lots.c.expired_points
    query = (
        select(points_lots.c.member_id, points_lots.c.id, points_lots.c.remaining, expected)
        .select_from(points_lots.outerjoin(moved, moved.c.lot_id == points_lots.c.id))
        .where(
            or_(
                points_lots.c.remaining != expected,
                points_lots.c.remaining < 0,
                points_lots.c.remaining > points_lots.c.points,
            )
        )
    )
    return [
        Problem(m, f"lot {lot} holds {held} points, its entries say {want}")
        for m, lot, held, want in conn.execute(query)
    ]


def _entries(conn: Connection) -> list[Problem]:
    parts = union_all(
        select(points_lots.c.entry_id.label("entry_id"), points_lots.c.points.label("points")),
        select(points_moves.c.entry_id, points_moves.c.points),
    ).subquery()
    effect = (
        select(parts.c.entry_id, func.sum(parts.c.points).label("points"))
        .group_by(parts.c.entry_id)
        .subquery()
    )
    moved = func.coalesce(effect.c.points, 0)
    query = (
        select(points_ledger.c.member_id, points_ledger.c.id, points_ledger.c.points, moved)
        .select_from(points_ledger.outerjoin(effect, effect.c.entry_id == points_ledger.c.id))
        .where(points_ledger.c.kind != "expire", points_ledger.c.points != moved)
    )
    return [
        Problem(m, f"entry {entry} records {pts} points but moved {did}")
        for m, entry, pts, did in conn.execute(query)
    ]


def _expiries(conn: Connection) -> list[Problem]:
    recorded = (
        select(
            points_ledger.c.member_id,
            points_ledger.c.occurred_at.label("at"),
            (-func.sum(points_ledger.c.points)).label("points"),
        )
        .where(points_ledger.c.kind == "expire")
        .group_by(points_ledger.c.member_id, points_ledger.c.occurred_at)
    )
    done = (
        select(
            points_lots.c.member_id,
            points_lots.c.expired_at.label("at"),
            func.sum(points_lots.c.expired_points).label("points"),
        )
        .where(points_lots.c.expired_at.is_not(None))
        .group_by(points_lots.c.member_id, points_lots.c.expired_at)
    )
    a, b = recorded.subquery(), done.subquery()
    query = (
        select(
            func.coalesce(a.c.member_id, b.c.member_id),
            func.coalesce(a.c.at, b.c.at),
            a.c.points,
            b.c.points,
        )
        .select_from(a.join(b, (a.c.member_id == b.c.member_id) & (a.c.at == b.c.at), full=True))
        .where(func.coalesce(a.c.points, -1) != func.coalesce(b.c.points, -2))
    )
    return [
        Problem(m, f"the expiry run of {at} recorded {pts} points, its lots lost {lost}")
        for m, at, pts, lost in conn.execute(query)
    ]


def _members(conn: Connection) -> list[Problem]:
    entries = select(
        points_ledger.c.member_id,
        points_ledger.c.points,
        points_ledger.c.debt,
        literal(0).label("remaining"),
        literal(0).label("owed"),
    )
    lots = select(
        points_lots.c.member_id, literal(0), literal(0), points_lots.c.remaining, literal(0)
    )
    accounts = select(
        points_accounts.c.member_id, literal(0), literal(0), literal(0), points_accounts.c.debt
    )
    parts = union_all(entries, lots, accounts).subquery()
    totals = select(
        parts.c.member_id,
        func.sum(parts.c.points),
        func.sum(parts.c.remaining),
        func.sum(parts.c.debt),
        func.sum(parts.c.owed),
    ).group_by(parts.c.member_id)
    problems = []
    for member_id, points, remaining, debt, owed in conn.execute(totals):
        if points != remaining:
            problems.append(Problem(member_id, f"entries sum to {points}, lots hold {remaining}"))
        if debt != owed or owed < 0:
            problems.append(Problem(member_id, f"debt entries sum to {debt}, account owes {owed}"))
    return problems
