"""Storage of refund reconciliations, per batch: the facts in four queries, the outcome in four.

Fetch: the orders with their refund sums, the ledger entries naming them, the lot moves of
their redemptions and restores, and the members' lots (with the lots drawn on, whatever they
hold now). Write: the entries in multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING``; for
the entries actually inserted (a key already recorded means that reconciliation already
happened), one guarded UPDATE of the lots, one insert of the moves, one update of the debts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from core.db import in_values
from core.events.tables import orders, refunds
from loyalty.ledger import Lot, apply_entry_moves, change_debts, insert_entries
from loyalty.refund_plan import OrderPoints, PlannedEntry, RefundFacts
from loyalty.tables import points_ledger, points_lots, points_moves


def cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


@dataclass(frozen=True)
class OrderTotals:
    """An order's member and total, and what its refunds add up to (capped at the total)."""

    order_id: str
    member_id: str
    total_cents: int
    refunded_cents: int


def fetch_order_totals(conn: Connection, order_ids: Iterable[str]) -> dict[str, OrderTotals]:
    """The orders that exist among ``order_ids``, with their refund sums, in one query."""
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    refunded = (
        select(func.coalesce(func.sum(refunds.c.amount), 0))
        .where(refunds.c.order_id == orders.c.order_id)
        .scalar_subquery()
    )
    query = select(
        orders.c.order_id, orders.c.member_id, orders.c.total, refunded.label("refunded")
    ).where(in_values(conn, orders.c.order_id, ids))
    totals = {}
    for row in conn.execute(query).all():
        total = cents(row.total)
        refunded_cents = min(total, cents(Decimal(row.refunded)))
        totals[row.order_id] = OrderTotals(row.order_id, row.member_id, total, refunded_cents)
    return totals


def fetch_refund_facts(
    conn: Connection, totals: dict[str, OrderTotals], *, now: datetime
) -> RefundFacts:
    """Everything ``plan_reconciliations`` reads about the orders, in three queries (the lots:
    the orders' own and the ones they drew on); the caller holds the members' account locks."""
    entries = _fetch_entries(conn, sorted(totals))
    states = {
        order_id: _order_points(order, entries[order_id]) for order_id, order in totals.items()
    }
    refunding = [state for state in states.values() if state.refunded_cents > 0]
    drawn = _fetch_drawn(conn, refunding)
    earn_ids = sorted({entry_id for state in refunding for entry_id in state.earn_entry_ids})
    lot_ids = sorted({lot_id for lots in drawn.values() for lot_id in lots})
    lots = points_lots.c
    wanted = [in_values(conn, lots.entry_id, earn_ids)] if earn_ids else []
    wanted += [in_values(conn, lots.id, lot_ids)] if lot_ids else []
    return RefundFacts(
        orders=states,
        drawn=drawn,
        lots=_fetch_lots(conn, or_(*wanted)) if wanted else {},
        recorded=frozenset(row.idempotency_key for rows in entries.values() for row in rows),
    )


def fetch_member_lots(
    conn: Connection, member_ids: Sequence[str], *, now: datetime
) -> dict[int, Lot]:
    """The members' lots holding points and not expired."""
    lots = points_lots.c
    return _fetch_lots(
        conn,
        and_(
            in_values(conn, lots.member_id, member_ids),
            lots.remaining > 0,
            or_(lots.expires_at.is_(None), lots.expires_at > now),
        ),
    )


def _fetch_entries(conn: Connection, order_ids: Sequence[str]) -> dict[str, list[Any]]:
    entries: dict[str, list[Any]] = defaultdict(list)
    if not order_ids:
        return entries
    query = select(
        points_ledger.c.id,
        points_ledger.c.order_id,
        points_ledger.c.kind,
        points_ledger.c.rule_id,
        points_ledger.c.points,
        points_ledger.c.debt,
        points_ledger.c.idempotency_key,
    ).where(in_values(conn, points_ledger.c.order_id, order_ids))
    for row in conn.execute(query).all():
        entries[row.order_id].append(row)
    return entries


def _order_points(order: OrderTotals, entries: list[Any]) -> OrderPoints:
    by_kind: dict[str, list[Any]] = defaultdict(list)
    for row in entries:
        by_kind[row.rule_id if row.kind == "reverse" else row.kind].append(row)
    return OrderPoints(
        order_id=order.order_id,
        member_id=order.member_id,
        total_cents=order.total_cents,
        refunded_cents=order.refunded_cents,
        earned=sum(r.points for r in by_kind["earn"]),
        earn_entry_ids=tuple(r.id for r in by_kind["earn"]),
        taken_back=sum(r.debt - r.points for r in by_kind["refund"]),
        redeem_entry_ids=tuple(r.id for r in by_kind["redeem"]),
        redeemed=-sum(r.points for r in by_kind["redeem"]),
        restore_entry_ids=tuple(r.id for r in by_kind["refund-restore"]),
        restored=sum(r.points for r in by_kind["refund-restore"]),
    )


def _fetch_drawn(conn: Connection, states: Sequence[OrderPoints]) -> dict[str, dict[int, int]]:
    """Per order, per lot: the points its redemption drew and its restores did not return."""
    order_of = {
        entry_id: state.order_id
        for state in states
        for entry_id in state.redeem_entry_ids + state.restore_entry_ids
    }
    drawn: dict[str, dict[int, int]] = defaultdict(dict)
    if not order_of:
        return {}
    moves = points_moves.c
    query = select(moves.entry_id, moves.lot_id, moves.points).where(
        in_values(conn, moves.entry_id, sorted(order_of))
    )
    for entry_id, lot_id, points in conn.execute(query).all():
        lots = drawn[order_of[entry_id]]
        lots[lot_id] = lots.get(lot_id, 0) - points
    return dict(drawn)


def _fetch_lots(conn: Connection, where: Any) -> dict[int, Lot]:
    lots = points_lots.c
    query = select(
        lots.id,
        lots.member_id,
        lots.entry_id,
        lots.points,
        lots.remaining,
        lots.expired_points,
        lots.available_at,
        lots.expires_at,
    ).where(where)
    return {row[0]: Lot(*row) for row in conn.execute(query).all()}


def write_reconciliations(
    conn: Connection, entries: Sequence[PlannedEntry], *, now: datetime, debts: dict[str, int]
) -> None:
    """Append the entries; apply the moves and debts of those actually inserted. The caller
    holds the members' account locks; ``debts`` is kept up to date."""
    ids = insert_entries(conn, [planned.draft for planned in entries], now=now)
    fresh = [
        (ids[key], planned)
        for planned in entries
        if (key := planned.draft.idempotency_key[:400]) in ids
    ]
    apply_entry_moves(conn, {entry_id: planned.moves for entry_id, planned in fresh})
    owed: Counter[str] = Counter()
    for _, planned in fresh:
        owed[planned.draft.member_id] += planned.draft.debt
    change_debts(conn, owed, now=now)
    for member_id, delta in owed.items():
        debts[member_id] = debts.get(member_id, 0) + delta
