"""Refunds: an order's points follow its money back, in proportion (``points.refunds: reverse``).

After refunds totalling R of an order of total T (R capped at T):

* the points the order redeemed go back, ``floor(redeemed × R / T)`` in all, to the lots they
  came from, latest-expiring first; a lot that has expired meanwhile takes nothing back (its
  points would have expired anyway; the entry's details name it);
* the points the order earned are taken back so that the member keeps
  ``floor(earned × (T - R) / T)``: first from the order's own lots, then from the member's other
  lots soonest-expiring first (pending ones included); what no lot holds any more becomes the
  member's debt, which later credits pay first (see loyalty.points).

Each reconciliation works from the totals, so it is idempotent and order-independent: a refund
that arrives before its order is reconciled when the order arrives.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from core.events.tables import orders, refunds
from loyalty.ledger import (
    EntryDraft,
    Lot,
    Move,
    apply_moves,
    change_debt,
    fetch_lots,
    fetch_lots_by_id,
    fetch_moves,
    insert_entry,
    lock_accounts,
    plan_draw,
    soonest_expiring_first,
)
from loyalty.tables import points_ledger


@dataclass(frozen=True)
class OrderPoints:
    """What the ledger holds for one order, and how much of it was refunded."""

    order_id: str
    member_id: str
    total_cents: int
    refunded_cents: int
    earned: int
    earn_entry_ids: tuple[int, ...]
    taken_back: int
    redeem_entry_ids: tuple[int, ...]
    redeemed: int
    restore_entry_ids: tuple[int, ...]
    restored: int

    def keep(self) -> int:
        """Earned points the member keeps after the refunds."""
        if self.total_cents <= 0:
            return 0
        return self.earned * (self.total_cents - self.refunded_cents) // self.total_cents

    def to_take_back(self) -> int:
        return self.earned - self.keep() - self.taken_back

    def to_restore(self) -> int:
        if self.total_cents <= 0:
            return 0
        return self.redeemed * self.refunded_cents // self.total_cents - self.restored


def cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def fetch_order_points(conn: Connection, order_id: str) -> OrderPoints | None:
    order = conn.execute(
        select(orders.c.member_id, orders.c.total).where(orders.c.order_id == order_id)
    ).first()
    if order is None:
        return None
    refunded = conn.execute(
        select(func.coalesce(func.sum(refunds.c.amount), 0)).where(refunds.c.order_id == order_id)
    ).scalar_one()
    by_kind: dict[str, list[Any]] = defaultdict(list)
    query = select(
        points_ledger.c.id,
        points_ledger.c.kind,
        points_ledger.c.rule_id,
        points_ledger.c.points,
        points_ledger.c.debt,
    ).where(points_ledger.c.order_id == order_id)
    for row in conn.execute(query):
        by_kind[row.rule_id if row.kind == "reverse" else row.kind].append(row)
    total = cents(order.total)
    return OrderPoints(
        order_id=order_id,
        member_id=order.member_id,
        total_cents=total,
        refunded_cents=min(total, cents(Decimal(refunded))),
        earned=sum(r.points for r in by_kind["earn"]),
        earn_entry_ids=tuple(r.id for r in by_kind["earn"]),
        taken_back=sum(r.debt - r.points for r in by_kind["refund"]),
        redeem_entry_ids=tuple(r.id for r in by_kind["redeem"]),
        redeemed=-sum(r.points for r in by_kind["redeem"]),
        restore_entry_ids=tuple(r.id for r in by_kind["refund-restore"]),
        restored=sum(r.points for r in by_kind["refund-restore"]),
    )


def reconcile_order(
    conn: Connection,
    order_id: str,
    *,
    trigger: str,
    at: datetime,
    now: datetime,
    debts: dict[str, int] | None = None,
) -> OrderPoints | None:
    """Bring the order's points in line with its refunds; ``trigger`` (the refund's event id)
    keys the entries. Restores redeemed points first, so a take-back can draw on them."""
    state = fetch_order_points(conn, order_id)
    if state is None or state.refunded_cents <= 0:
        return state
    debts = debts if debts is not None else {}
    debts.update(lock_accounts(conn, [state.member_id], now=now))
    if state.to_restore() > 0:
        _restore(conn, state, trigger=trigger, at=at, now=now)
    if state.to_take_back() > 0:
        _take_back(conn, state, trigger=trigger, at=at, now=now, debts=debts)
    return state


def _story(state: OrderPoints) -> str:
    return (
        f"order {state.order_id}: {Decimal(state.refunded_cents) / 100} of "
        f"{Decimal(state.total_cents) / 100} refunded"
    )


def _restore(
    conn: Connection, state: OrderPoints, *, trigger: str, at: datetime, now: datetime
) -> None:
    drawn: dict[int, int] = defaultdict(int)
    for _, lot_id, points in fetch_moves(conn, state.redeem_entry_ids):
        drawn[lot_id] -= points
    for _, lot_id, points in fetch_moves(conn, state.restore_entry_ids):
        drawn[lot_id] -= points
    lots = fetch_lots_by_id(conn, list(drawn))
    open_lots = [lot for lot in lots.values() if lot.usable(now) and lot.expired_points == 0]
    moves = _plan_restore(
        list(reversed(soonest_expiring_first(open_lots))), drawn, state.to_restore()
    )
    skipped = sorted(lot_id for lot_id in drawn if lot_id not in {lot.id for lot in open_lots})
    back = sum(points for _, points in moves)
    if back <= 0:
        return
    draft = EntryDraft(
        member_id=state.member_id,
        kind="reverse",
        points=back,
        rule_id="refund-restore",
        reason=f"{_story(state)}: {back} of the {state.redeemed} redeemed points come back",
        idempotency_key=f"restore:{trigger}",
        occurred_at=at,
        order_id=state.order_id,
        source_event_id=trigger,
        details={"expired_lots_not_restored": skipped},
    )
    entry_id = insert_entry(conn, draft, now=now)
    if entry_id is not None:
        apply_moves(conn, entry_id, moves)


def _plan_restore(lots: list[Lot], drawn: dict[int, int], points: int) -> list[Move]:
    moves: list[Move] = []
    for lot in lots:
        back = min(drawn[lot.id], points, lot.points - lot.remaining)
        if back > 0:
            moves.append((lot.id, back))
            points -= back
    return moves


def _take_back(
    conn: Connection,
    state: OrderPoints,
    *,
    trigger: str,
    at: datetime,
    now: datetime,
    debts: dict[str, int],
) -> None:
    want = state.to_take_back()
    lots = fetch_lots(conn, state.member_id, now=now)  # soonest-expiring first
    own = [lot for lot in lots if lot.entry_id in state.earn_entry_ids]
    moves, short = plan_draw(own + [lot for lot in lots if lot not in own], want)
    draft = EntryDraft(
        member_id=state.member_id,
        kind="reverse",
        points=short - want,
        debt=short,
        rule_id="refund",
        idempotency_key=f"takeback:{trigger}",
        occurred_at=at,
        reason=f"{_story(state)}: {want} of the {state.earned} earned points taken back"
        + (f", {short} of them already spent and owed" if short else ""),
        order_id=state.order_id,
        source_event_id=trigger,
        details={"earned": state.earned, "keep": state.keep(), "owed": short},
    )
    entry_id = insert_entry(conn, draft, now=now)
    if entry_id is None:
        return
    apply_moves(conn, entry_id, moves)
    if short:
        change_debt(conn, state.member_id, short, now=now)
        debts[state.member_id] = debts.get(state.member_id, 0) + short
