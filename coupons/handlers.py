"""Event handlers: redeem the codes of paid orders, apply the refund policy to refunds.

Both run inside the intake transaction. A code that cannot be redeemed is recorded as a
refusal (:mod:`coupons.refusals`), never raised: the order is paid whatever the coupon's fate,
and the event must not fail. The intake report counts the refusals ("coupon_refused").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from core.events.handlers import HandlerContext, subscribe
from core.events.types import Event, OrderPaid, OrderRefunded
from coupons.carts import cart_from_items
from coupons.redemption import (
    RedemptionOutcome,
    fetch_batch_codes,
    redeem_order,
    return_refunded_coupons,
)
from coupons.refusals import Refusal, record_refusals, refusals_of

log = logging.getLogger(__name__)
REFUSED_TALLY = "coupon_refused"


@subscribe("order.paid")
def redeem_paid_orders(ctx: HandlerContext, events: Sequence[Event]) -> None:
    """Redeem each paid order's ``coupon_codes`` (judged at the time it was paid); record the
    codes refused. The batch's codes are read in one query, refusals written in one."""
    if ctx.program is None:
        return
    paid = [e for e in events if isinstance(e.data, OrderPaid) and e.data.coupon_codes]
    if not paid:
        return
    stored = fetch_batch_codes(ctx.conn, [e.data.coupon_codes for e in paid])  # type: ignore[attr-defined]
    refused: list[Refusal] = []
    for event in paid:
        data = event.data
        assert isinstance(data, OrderPaid)
        refused += refusals_of(
            _redeem(ctx, event, data, stored),
            order_id=data.order_id,
            member_id=event.member_id,
            refused_at=event.occurred_at,
            event_id=event.id,
        )
    # A refund that arrived before its order is applied now.
    order_ids = [e.data.order_id for e in paid]  # type: ignore[attr-defined]
    return_refunded_coupons(ctx.conn, ctx.program, order_ids=order_ids, now=ctx.now)
    recorded = record_refusals(ctx.conn, refused)
    if recorded:
        ctx.tally(REFUSED_TALLY, recorded)


def _redeem(
    ctx: HandlerContext, event: Event, data: OrderPaid, stored: dict[str, Any]
) -> list[RedemptionOutcome]:
    cart = cart_from_items(data.items, total=None if data.items else data.total)
    return redeem_order(
        ctx.conn,
        ctx.program,
        member_id=event.member_id,
        order_id=data.order_id,
        codes=data.coupon_codes,
        cart=cart,
        now=event.occurred_at,
        stored=stored,
    )


@subscribe("order.refunded")
def return_coupons_of_refunded_orders(ctx: HandlerContext, events: Sequence[Event]) -> None:
    """A fully refunded order gives its still-valid coupons back (see coupons.checkout)."""
    if ctx.program is None:
        return
    order_ids = sorted({e.data.order_id for e in events if isinstance(e.data, OrderRefunded)})
    returned = return_refunded_coupons(ctx.conn, ctx.program, order_ids=order_ids, now=ctx.now)
    if returned:
        log.info("returned %d coupon(s) of refunded orders to wallets", len(returned))
