"""Refunds checked against their order, before anything is stored.

A refund must name the member its order belongs to, and an order's refunds must not total more
than the order. A refund that arrives before its order cannot be checked yet: it is accepted,
and checked when the order arrives; one that fails then is taken out of the refunds projection
and dead-lettered with the reason (the event stays in the event store, so a redelivery is still
a duplicate). Pure decisions (:func:`judge_refunds`) over facts fetched once per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, select

from core.db import in_values
from core.events.tables import events, orders, refunds
from core.events.types import Event, OrderPaid, OrderRefunded

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class OrderFacts:
    member_id: str
    total: Decimal


@dataclass(frozen=True)
class StoredRefund:
    event_id: str
    order_id: str
    member_id: str
    amount: Decimal
    refunded_at: datetime
    data: dict[str, Any]

    def envelope(self) -> dict[str, Any]:
        """The event as it was sent, for the dead-letter store."""
        return {
            "id": self.event_id,
            "type": "order.refunded",
            "occurred_at": self.refunded_at.isoformat(),
            "member_id": self.member_id,
            "data": self.data,
        }


@dataclass
class RefundFacts:
    """What the checks need to know about the orders a batch pays or refunds."""

    orders: dict[str, OrderFacts] = field(default_factory=dict)
    refunded: dict[str, Decimal] = field(default_factory=dict)
    early: dict[str, list[StoredRefund]] = field(default_factory=dict)
    stored_ids: set[str] = field(default_factory=set)
    paid_before: set[str] = field(default_factory=set)  # orders of the batch already stored


@dataclass
class RefundVerdict:
    rejected: dict[str, str] = field(default_factory=dict)  # event id → reason
    quarantined: list[tuple[StoredRefund, str]] = field(default_factory=list)


def fetch_refund_facts(
    conn: Connection, batch: Sequence[Event], *, paid_before: set[str]
) -> RefundFacts | None:
    """What the checks need, in at most three queries; the orders the batch pays were already
    looked up by intake (``paid_before``: those already stored)."""
    refunded = [e for e in batch if isinstance(e.data, OrderRefunded)]
    paid = [e for e in batch if isinstance(e.data, OrderPaid)]
    if not refunded and not paid:
        return None
    refunded_ids = sorted({e.data.order_id for e in refunded})  # type: ignore[attr-defined]
    ids = sorted({*refunded_ids, *(e.data.order_id for e in paid)})  # type: ignore[attr-defined]
    facts = RefundFacts(paid_before=paid_before)
    if refunded_ids:
        query = select(orders.c.order_id, orders.c.member_id, orders.c.total)
        for row in conn.execute(query.where(in_values(conn, orders.c.order_id, refunded_ids))):
            facts.orders[row.order_id] = OrderFacts(row.member_id, row.total)
    query = select(refunds, events.c.data).join(events, events.c.id == refunds.c.event_id)
    for row in conn.execute(query.where(in_values(conn, refunds.c.order_id, ids))):
        facts.refunded[row.order_id] = facts.refunded.get(row.order_id, ZERO) + row.amount
        early = StoredRefund(
            row.event_id, row.order_id, row.member_id, row.amount, row.refunded_at, row.data
        )
        facts.early.setdefault(row.order_id, []).append(early)
    if refunded:
        wanted = [e.id for e in refunded]
        facts.stored_ids = set(
            conn.execute(select(events.c.id).where(in_values(conn, events.c.id, wanted))).scalars()
        )
    return facts


def judge_refunds(batch: Sequence[Event], facts: RefundFacts) -> RefundVerdict:
    """Pure: which refunds of the batch to reject, and which stored early refunds fail now."""
    verdict = RefundVerdict()
    known = dict(facts.orders)
    totals = dict(facts.refunded)
    for event in sorted(batch, key=lambda e: (e.occurred_at, e.id)):
        data = event.data
        if isinstance(data, OrderPaid) and _is_new(data.order_id, known, facts):
            known[data.order_id] = OrderFacts(event.member_id, data.total)
            totals[data.order_id] = _check_early(data.order_id, known, facts, verdict)
        elif isinstance(data, OrderRefunded) and event.id not in facts.stored_ids:
            reason = _refund_problem(event.member_id, data, known, totals)
            if reason:
                verdict.rejected[event.id] = reason
            else:
                totals[data.order_id] = totals.get(data.order_id, ZERO) + data.amount
    return verdict


def _is_new(order_id: str, known: dict[str, OrderFacts], facts: RefundFacts) -> bool:
    return order_id not in known and order_id not in facts.paid_before


def _check_early(
    order_id: str, known: dict[str, OrderFacts], facts: RefundFacts, verdict: RefundVerdict
) -> Decimal:
    """Refunds stored before their order arrived, checked now; returns what stays refunded."""
    kept = ZERO
    for early in facts.early.get(order_id, []):
        data = OrderRefunded(order_id=order_id, amount=early.amount)
        reason = _refund_problem(early.member_id, data, known, {order_id: kept})
        if reason:
            verdict.quarantined.append((early, f"checked when order {order_id} arrived: {reason}"))
        else:
            kept += early.amount
    return kept


def _refund_problem(
    member_id: str, data: OrderRefunded, known: dict[str, OrderFacts], totals: dict[str, Decimal]
) -> str | None:
    order = known.get(data.order_id)
    if order is None:
        return None  # not arrived yet: checked when it does
    if order.member_id != member_id:
        return (
            f"data.order_id: order {data.order_id} belongs to another member; "
            "send the refund with the order's member_id"
        )
    already = totals.get(data.order_id, ZERO)
    if already + data.amount > order.total:
        room = max(ZERO, order.total - already)
        return (
            f"data.amount: refunds of order {data.order_id} would total {already + data.amount}, "
            f"more than its total {order.total}; at most {room} is left to refund"
        )
    return None


def remove_quarantined(conn: Connection, quarantined: Sequence[StoredRefund]) -> None:
    """Take refunds that failed their late check out of the refunds projection."""
    if quarantined:
        ids = [refund.event_id for refund in quarantined]
        conn.execute(delete(refunds).where(in_values(conn, refunds.c.event_id, ids)))
