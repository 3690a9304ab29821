"""Points services: credit lots (earnings, awards, adjustments), debt repayment, balances.

Debt policy (refunds): when a refund takes back points that were already spent, whatever no
lot can cover becomes the member's debt; every later credit (earn, award, positive adjust)
pays the debt first, through a ``reverse`` entry drawn from the new lot. The available
balance therefore never goes below zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, or_, select

from core.events.tables import members
from loyalty.earning import Credit, EarnRules
from loyalty.errors import InsufficientPoints, InvalidPoints, UnknownMember
from loyalty.ledger import (
    EntryDraft,
    apply_moves,
    change_debt,
    create_lots,
    fetch_lots,
    insert_entries,
    insert_entry,
    lock_accounts,
    plan_draw,
)
from loyalty.limits import check_balance_room, check_operation, fetch_balances, fit_credits
from loyalty.tables import points_accounts, points_ledger, points_lots


@dataclass(frozen=True)
class Credited:
    """What a credit did: its entry and lot (None when the key was already recorded)."""

    idempotency_key: str
    points: int
    entry_id: int | None
    lot_id: int | None = None
    debt_paid: int = 0

    @property
    def duplicate(self) -> bool:
        return self.entry_id is None


def record_credits(
    conn: Connection, credits: Sequence[Credit], *, now: datetime, debts: dict[str, int]
) -> list[Credited]:
    """Append each credit's entry and lot once (by idempotency key); pay debts from them.

    The caller holds the members' account locks; ``debts`` (from ``lock_accounts``) is kept
    up to date as debts are paid. A credit beyond the points bounds is cut to them
    (``loyalty.limits.fit_credits``).
    """
    unique = list({credit.idempotency_key[:400]: credit for credit in credits}.values())
    unique = fit_credits(unique, fetch_balances(conn, [c.member_id for c in unique], now=now))
    ids = insert_entries(conn, unique, now=now)
    fresh = [(ids[c.idempotency_key[:400]], c) for c in unique if c.idempotency_key[:400] in ids]
    lots = create_lots(conn, fresh)
    done = {
        credit.idempotency_key: Credited(
            credit.idempotency_key,
            credit.points,
            entry_id,
            lots[entry_id],
            _repay_debt(conn, credit, lots[entry_id], debts, now),
        )
        for entry_id, credit in fresh
    }
    return [
        done.get(c.idempotency_key) or Credited(c.idempotency_key, c.points, None) for c in credits
    ]


def _repay_debt(
    conn: Connection, credit: Credit, lot_id: int, debts: dict[str, int], now: datetime
) -> int:
    owed = debts.get(credit.member_id, 0)
    paid = min(owed, credit.points)
    if paid <= 0:
        return 0
    draft = EntryDraft(
        member_id=credit.member_id,
        kind="reverse",
        points=-paid,
        debt=-paid,
        rule_id="debt-repayment",
        reason=f"{paid} of the new {credit.points} points pay back points a refund took back "
        "after they were spent",
        idempotency_key=f"debt:{credit.idempotency_key}",
        occurred_at=credit.occurred_at,
        details={"credit": credit.idempotency_key, "debt_before": owed},
    )
    entry_id = insert_entry(conn, draft, now=now)
    if entry_id is None:
        return 0
    apply_moves(conn, entry_id, [(lot_id, -paid)])
    change_debt(conn, credit.member_id, -paid, now=now)
    debts[credit.member_id] = owed - paid
    return paid


def award_points(
    ctx_or_conn: Any,
    member_id: str,
    points: int,
    *,
    reason: str,
    idempotency_key: str,
    now: datetime,
    program: Any,
) -> Credited:
    """Credit ``points`` (available at once, expiring per policy), once per key.

    Campaign steps call this (``award_points: {points: 500, reason: referral}``); a second call
    with the same key credits nothing and returns ``duplicate``.
    """
    if points <= 0:
        raise InvalidPoints(f"award {points} points: an award needs a positive number of points")
    check_operation(points, operation="award")
    conn: Connection = getattr(ctx_or_conn, "conn", ctx_or_conn)
    available_at, expires_at = EarnRules.from_program(program).lot_dates(now)
    credit = Credit(
        member_id=member_id,
        points=points,
        rule_id="award",
        reason=reason,
        idempotency_key=f"award:{idempotency_key}",
        occurred_at=now,
        available_at=available_at,
        expires_at=expires_at,
        details={"awarded_for": reason},
    )
    debts = lock_accounts(conn, [member_id], now=now)
    check_balance_room(conn, member_id, points, now=now, operation="award")
    [credited] = record_credits(conn, [credit], now=now, debts=debts)
    return credited


def adjust_points(
    conn: Connection, member_id: str, points: int, *, reason: str, now: datetime, program: Any
) -> Credited:
    """An operator's correction: add a lot, or take points soonest-expiring first."""
    if points == 0 or not reason.strip():
        raise InvalidPoints("an adjustment needs non-zero points and a --reason")
    check_operation(points, operation="adjust")
    if (
        conn.execute(select(members.c.member_id).where(members.c.member_id == member_id)).first()
        is None
    ):
        raise UnknownMember(member_id)
    key = f"adjust:{member_id}:{now.isoformat()}:{points}:{reason}"
    debts = lock_accounts(conn, [member_id], now=now)
    if points > 0:
        check_balance_room(conn, member_id, points, now=now, operation="adjust")
        available_at, expires_at = EarnRules.from_program(program).lot_dates(now)
        credit = Credit(
            member_id, points, "operator", reason, key, now, available_at, expires_at, kind="adjust"
        )
        return record_credits(conn, [credit], now=now, debts=debts)[0]
    lots = fetch_lots(conn, member_id, now=now, available_only=True)
    moves, short = plan_draw(lots, -points)
    if short:
        raise InsufficientPoints(member_id, wanted=-points, available=-points - short)
    draft = EntryDraft(member_id, "adjust", points, "operator", reason, key, now)
    entry_id = insert_entry(conn, draft, now=now)
    if entry_id is not None:
        apply_moves(conn, entry_id, moves)
    return Credited(key, points, entry_id)


@dataclass(frozen=True)
class LotView:
    points: int
    remaining: int
    available_at: datetime
    expires_at: datetime | None
    rule_id: str | None
    reason: str


@dataclass(frozen=True)
class PointsView:
    """A member's points at ``now``: usable balance, pending, debt, and the lots behind them."""

    balance: int
    pending: int
    debt: int
    lots: tuple[LotView, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "balance": self.balance,
            "pending": self.pending,
            "debt": self.debt,
            "lots": [vars(lot) for lot in self.lots],
        }


def fetch_points(conn: Connection, member_id: str, *, now: datetime) -> PointsView:
    query = (
        select(points_lots, points_ledger.c.rule_id, points_ledger.c.reason)
        .join(points_ledger, points_ledger.c.id == points_lots.c.entry_id)
        .where(
            points_lots.c.member_id == member_id,
            points_lots.c.remaining > 0,
            or_(points_lots.c.expires_at.is_(None), points_lots.c.expires_at > now),
        )
        .order_by(points_lots.c.available_at, points_lots.c.id)
    )
    lots = tuple(
        LotView(r.points, r.remaining, r.available_at, r.expires_at, r.rule_id, r.reason)
        for r in conn.execute(query)
    )
    debt = conn.execute(
        select(func.coalesce(func.max(points_accounts.c.debt), 0)).where(
            points_accounts.c.member_id == member_id
        )
    ).scalar_one()
    return PointsView(
        balance=sum(lot.remaining for lot in lots if lot.available_at <= now),
        pending=sum(lot.remaining for lot in lots if lot.available_at > now),
        debt=debt,
        lots=lots,
    )
