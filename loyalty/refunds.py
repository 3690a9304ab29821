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
that arrives before its order is reconciled when the order arrives. Its entries are keyed
``restore:{trigger}`` and ``takeback:{trigger}`` (the triggering event's id); a key already
recorded means that reconciliation already happened, and its moves are not applied again.

A batch is reconciled set-based (``reconcile_orders``): its facts fetched in a few queries
(``loyalty.refund_store``), every restore and take-back planned in order over an in-memory
copy of the members' lots (``loyalty.refund_plan``), so a member's later refund in the batch
sees the lots as the earlier one left them, then the outcome written in a few statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from loyalty.ledger import lock_accounts
from loyalty.refund_plan import OrderPoints, ReconcileRequest, plan_reconciliations
from loyalty.refund_store import (
    cents,
    fetch_member_lots,
    fetch_order_totals,
    fetch_refund_facts,
    write_reconciliations,
)

__all__ = ["OrderPoints", "ReconcileRequest", "cents", "reconcile_order", "reconcile_orders"]


@dataclass(frozen=True)
class _Request:
    order_id: str
    trigger: str
    at: datetime


def reconcile_orders(
    conn: Connection,
    requests: Sequence[ReconcileRequest],
    *,
    now: datetime,
    debts: dict[str, int] | None = None,
) -> list[OrderPoints | None]:
    """Bring each requested order's points in line with its refunds, in the requests' order;
    returns each order as it stood before its request (None: no such order).

    ``debts`` holds the debts of members whose accounts the caller has locked (and is kept up
    to date); the accounts of the orders' other members are locked here.
    """
    debts = debts if debts is not None else {}
    totals = fetch_order_totals(conn, [request.order_id for request in requests])
    unlocked = {o.member_id for o in totals.values() if o.refunded_cents > 0} - set(debts)
    debts.update(lock_accounts(conn, sorted(unlocked), now=now))
    facts = fetch_refund_facts(conn, totals, now=now)
    plan = plan_reconciliations(requests, facts, now=now)
    while plan.incomplete:  # once at most: those members' lots are then all fetched
        lots = fetch_member_lots(conn, sorted(plan.incomplete), now=now)
        facts = facts.with_member_lots(plan.incomplete, lots)
        plan = plan.replanned(requests, facts, now=now)
    write_reconciliations(conn, plan.entries, now=now, debts=debts)
    return plan.states


def reconcile_order(
    conn: Connection,
    order_id: str,
    *,
    trigger: str,
    at: datetime,
    now: datetime,
    debts: dict[str, int] | None = None,
) -> OrderPoints | None:
    """Bring one order's points in line with its refunds; ``trigger`` (the refund's event id)
    keys the entries. Restores redeemed points first, so a take-back can draw on them."""
    [state] = reconcile_orders(conn, [_Request(order_id, trigger, at)], now=now, debts=debts)
    return state
