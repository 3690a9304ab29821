"""The points a paid order says it redeemed (``order.paid``'s ``points_redeemed``), redeemed.

The shop applied the points at checkout (usually after ``POST /v1/checkout/reserve`` held them);
``order.paid`` is the fact that it did. Loyalty then redeems them exactly as ``points redeem``
does (:func:`loyalty.redemption.draw_redemption`): the same ``min_points`` and
``max_order_share``, soonest-expiring lots first, one ``redeem`` entry keyed ``redeem:{order}``,
so a replayed or retried event, a second worker or an earlier ``points redeem`` of the order
never redeem twice. Judged at the time the order was paid (the lots usable then).

``total`` is what the customer paid, after the points: the points paid ``value`` on top of it,
so the share is of ``total + value`` (the amount ``reserve`` held the points on).

A redemption the rules or the balance refuse is not an error (the order is paid whatever
loyalty thinks of it): it is a row of ``points_refusals`` with a reason code and the message
``points redeem`` would print, counted in the intake report (``points_refused``) and listed by
``points refused``. The event's other effects (earning, tiers) go on as usual. A failure that
is no refusal (a bug, a database error) raises, and the failure model of docs/failures.md
applies: the handler's savepoint rolls back and the event is retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from core.db import bulk_insert
from core.events.types import Event, OrderPaid
from core.program.program_file import Redeem
from loyalty.errors import (
    InsufficientPoints,
    OrderAlreadyRedeemed,
    PointsError,
    RedemptionRefused,
)
from loyalty.ledger import lock_accounts
from loyalty.redemption import (
    RedemptionDraft,
    check_redemption,
    draw_redemption,
    points_value,
    redeemed_points,
)
from loyalty.tables import points_refusals

REFUSED_TALLY = "points_refused"


@dataclass(frozen=True)
class RedeemOrder:
    """Redeem a paid order's ``points_redeemed`` (``trigger``: the ``order.paid`` event)."""

    member_id: str
    order_id: str
    points: int
    paid: Decimal  # the order's total: what was paid after the points
    trigger: str
    at: datetime

    @classmethod
    def of(cls, event: Event) -> RedeemOrder | None:
        """The step of an ``order.paid`` that redeemed points; None for any other event."""
        data = event.data
        if not isinstance(data, OrderPaid) or data.points_redeemed <= 0:
            return None
        return cls(
            event.member_id, data.order_id, data.points_redeemed, data.total, event.id,
            event.occurred_at,
        )  # fmt: skip


@dataclass(frozen=True)
class PointsRefusal:
    """A paid order's points that were not redeemed, and why (a reason code and the text)."""

    order_id: str
    member_id: str
    points: int
    reason: str
    message: str
    refused_at: datetime
    event_id: str | None = None


def redeem_paid_orders(
    conn: Connection, steps: Sequence[RedeemOrder], *, now: datetime, program: Any
) -> list[PointsRefusal]:
    """Redeem each step in order (its member's account locked); records and returns the
    refusals (one per order, once however often run)."""
    rules: Redeem = program.program_file.points.redeem
    refusals = [r for step in steps if (r := redeem_order(conn, step, rules=rules, now=now))]
    record_refusals(conn, refusals, now=now)
    return refusals


def redeem_order(
    conn: Connection, step: RedeemOrder, *, rules: Redeem, now: datetime
) -> PointsRefusal | None:
    """Redeem one paid order's points; None when redeemed (now or before), else the refusal."""
    lock_accounts(conn, [step.member_id], now=now)
    already = redeemed_points(conn, step.order_id)
    if already == step.points:
        return None  # redeemed before: by this event's earlier run, or by `points redeem`
    try:
        if already:
            raise OrderAlreadyRedeemed(step.order_id, points=already)
        value = points_value(step.points, rules)
        base = step.paid + value
        check_redemption(step.points, base, rules)
        draft = RedemptionDraft(
            step.member_id, step.order_id, step.points, base, value, at=step.at,
            source_event_id=step.trigger, details={"paid": str(step.paid)},
        )  # fmt: skip
        draw_redemption(conn, draft, rules=rules, now=now)
    except PointsError as exc:
        return _refusal(step, exc, rules)
    return None


def _refusal(step: RedeemOrder, exc: PointsError, rules: Redeem) -> PointsRefusal:
    return PointsRefusal(
        order_id=step.order_id,
        member_id=step.member_id,
        points=step.points,
        reason=reason_code(exc, step.points, rules),
        message=f"order.paid {step.trigger} of order {step.order_id}: {exc}",
        refused_at=step.at,
        event_id=step.trigger,
    )


def reason_code(exc: PointsError, points: int, rules: Redeem) -> str:
    """The reason code of a refused redemption (the codes of ``loyalty.holds`` and two more)."""
    if isinstance(exc, InsufficientPoints):
        return "points.insufficient"
    if isinstance(exc, OrderAlreadyRedeemed):
        return "points.order_already_redeemed"
    if isinstance(exc, RedemptionRefused):
        return "points.below_minimum" if points < rules.min_points else "points.over_order_share"
    return "points.invalid"


def record_refusals(conn: Connection, refusals: Sequence[PointsRefusal], *, now: datetime) -> int:
    """Keep the refusals (one per order: a refusal already recorded is kept as it was)."""
    if not refusals:
        return 0
    # Two refusals of one order in a batch cannot happen (an order is paid once), but the
    # first is the one kept.
    rows = list({r.order_id: {**vars(r), "recorded_at": now} for r in reversed(refusals)}.values())
    inserted = bulk_insert(
        conn, points_refusals, rows, conflict_keys=["order_id"], returning="order_id"
    )
    return len(inserted)


def fetch_refusals(
    conn: Connection, *, member_id: str | None = None, limit: int = 100
) -> list[PointsRefusal]:
    """Recorded refusals, newest order first (a member's only, with ``member_id``)."""
    p = points_refusals.c
    query = select(
        p.order_id, p.member_id, p.points, p.reason, p.message, p.refused_at, p.event_id
    ).order_by(p.refused_at.desc(), p.order_id)
    if member_id is not None:
        query = query.where(p.member_id == member_id)
    return [PointsRefusal(**row._mapping) for row in conn.execute(query.limit(limit))]
