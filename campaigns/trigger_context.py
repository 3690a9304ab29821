"""The context a trigger would give a member's journey, for ``campaigns preview``.

A cart campaign remembers the cart, an ``order.paid`` campaign the order, a referral campaign
the referral (see campaigns.triggers.event_context and campaigns.scans): here the same values
are built from what the member has now, with a few words on where they came from.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from campaigns.definitions import Campaign
from campaigns.triggers import REFERRAL_EVENT, basket
from core.events.tables import carts, orders

Context = tuple[dict[str, Any], str]


def trigger_context(conn: Connection, campaign: Campaign, member_id: str) -> Context:
    """The journey context and where it came from (``open cart c-1``, ``no order yet``)."""
    trigger = campaign.trigger
    if trigger.cart_abandoned is not None or trigger.event == "cart.updated":
        return newest_open_cart(conn, member_id)
    if trigger.event == "order.paid":
        return newest_order(conn, member_id)
    if trigger.referral_qualified is not None or trigger.event == REFERRAL_EVENT:
        return referral(conn, member_id)
    return {}, "none needed"


def newest_open_cart(conn: Connection, member_id: str) -> Context:
    query = (
        select(carts)
        .where(carts.c.member_id == member_id, carts.c.converted_at.is_(None))
        .order_by(carts.c.updated_at.desc())
        .limit(1)
    )
    cart = conn.execute(query).first()
    if cart is None:
        return {}, "no open cart (cart variables are missing)"
    value = basket({"total": cart.total, "items": cart.items}, cart_id=cart.cart_id)
    return {"cart": value}, f"open cart {cart.cart_id}"


def newest_order(conn: Connection, member_id: str) -> Context:
    query = (
        select(orders)
        .where(orders.c.member_id == member_id)
        .order_by(orders.c.paid_at.desc())
        .limit(1)
    )
    order = conn.execute(query).first()
    if order is None:
        return {}, "no order yet (order variables are missing)"
    event = {"id": order.event_id, "type": "order.paid", "occurred_at": order.paid_at.isoformat()}
    value = basket({"total": order.total, "items": order.items}, order_id=order.order_id)
    return {"event": event, "order": value}, f"newest order {order.order_id}"


def referral(conn: Connection, member_id: str) -> Context:
    """The member as referee of their referrer, else as referrer of their newest referee."""
    from loyalty.referral_store import fetch_referrals

    found = fetch_referrals(conn, member_id)
    mine = found["referred_by"]
    if mine and mine["referrer"]:
        return _referral(mine), f"referred by {mine['referrer']}"
    made = [r for r in found["referred"] if r["referee"]]
    if made:
        return _referral(made[-1]), f"referrer of {made[-1]['referee']}"
    return {}, "no referral (the member stands in for referrer and referee)"


def _referral(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "referral": {
            "referrer_id": row["referrer"],
            "referee_id": row["referee"],
            "order_id": row["order_id"],
        }
    }
