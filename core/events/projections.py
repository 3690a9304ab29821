"""Projections of accepted events into members, orders, refunds and carts.

Events may arrive out of order, so each projection is order-independent: a member row exists as
soon as any event names it; profile fields take the newest value by ``occurred_at`` (an older
event only fills fields still empty); a cart update older than the cart's newest is ignored; an
order marks its cart converted whatever order the two arrive in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from core.db import bulk_insert, in_values
from core.events.tables import carts, members, orders, refunds
from core.events.types import CartUpdated, Event, MemberProfile, OrderPaid, OrderRefunded

PROFILE_FIELDS = (
    "first_name",
    "email",
    "phone",
    "push_token",
    "birthday",
    "timezone",
    "locale",
    "referral_code",
    "referred_by",
)


def apply_projections(conn: Connection, events: Sequence[Event], *, now: datetime) -> None:
    """Project a batch of newly accepted events (already validated and de-duplicated)."""
    _ensure_members(conn, events, now=now)
    _apply_profiles(conn, [e for e in events if isinstance(e.data, MemberProfile)])
    _insert_orders(conn, [e for e in events if isinstance(e.data, OrderPaid)])
    _insert_refunds(conn, [e for e in events if isinstance(e.data, OrderRefunded)])
    _apply_carts(conn, [e for e in events if isinstance(e.data, CartUpdated)])


def _ensure_members(conn: Connection, events: Sequence[Event], *, now: datetime) -> None:
    first_seen: dict[str, datetime] = {}
    for event in events:
        seen = first_seen.get(event.member_id)
        first_seen[event.member_id] = min(seen, event.occurred_at) if seen else event.occurred_at
    rows = [{"member_id": m, "first_seen_at": t} for m, t in first_seen.items()]
    bulk_insert(conn, members, rows, conflict_keys=["member_id"])


def _apply_profiles(conn: Connection, events: Sequence[Event]) -> None:
    if not events:
        return
    ids = sorted({e.member_id for e in events})
    current = {
        row.member_id: dict(row._mapping)
        for row in conn.execute(select(members).where(in_values(conn, members.c.member_id, ids)))
    }
    for event in sorted(events, key=lambda e: e.occurred_at):
        current[event.member_id] = merge_profile(current[event.member_id], event)
    rows = [{**_profile_values(row), "member_id": m, "first_seen_at": row["first_seen_at"]}
            for m, row in current.items()]  # fmt: skip
    bulk_insert(conn, members, rows, conflict_keys=["member_id"], update_columns=_PROFILE_COLUMNS)


def merge_profile(row: dict[str, Any], event: Event) -> dict[str, Any]:
    """Fold one profile event into a member row; pure, so the out-of-order rules are testable."""
    data = event.data
    assert isinstance(data, MemberProfile)
    newer = row["profile_at"] is None or event.occurred_at >= row["profile_at"]
    merged = dict(row)
    given = data.model_dump(exclude_unset=True, exclude_none=True)
    for name in PROFILE_FIELDS:
        if name in given and (newer or merged[name] is None):
            merged[name] = getattr(data, name)
    for channel in ("email", "sms", "push"):
        value = getattr(data.consents, channel) if data.consents else None
        if value is not None and (newer or merged[f"consent_{channel}"] is None):
            merged[f"consent_{channel}"] = value
    if event.type == "member.registered":
        merged["registered_at"] = event.occurred_at
    if newer:
        merged["profile_at"] = event.occurred_at
    return merged


_PROFILE_COLUMNS = (*PROFILE_FIELDS, "registered_at", "profile_at", "consent_email",
                    "consent_sms", "consent_push")  # fmt: skip


def _profile_values(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in _PROFILE_COLUMNS}


def _insert_orders(conn: Connection, events: Sequence[Event]) -> None:
    if not events:
        return
    rows = [_order_row(e) for e in events]
    bulk_insert(conn, orders, rows, conflict_keys=["order_id"])
    with_cart = [e for e in events if e.data.cart_id]  # type: ignore[attr-defined]
    if with_cart:
        _convert_carts(conn, with_cart)


def _order_row(event: Event) -> dict[str, Any]:
    data = event.data
    assert isinstance(data, OrderPaid)
    return {
        "order_id": data.order_id,
        "member_id": event.member_id,
        "total": data.total,
        "currency": data.currency,
        "paid_at": event.occurred_at,
        "items": event.raw_data.get("items", []),
        "coupon_codes": list(data.coupon_codes),
        "points_redeemed": data.points_redeemed,
        "cart_id": data.cart_id,
        "event_id": event.id,
    }


def _convert_carts(conn: Connection, events: Sequence[Event]) -> None:
    """Mark each order's cart converted; a cart not seen yet is created already converted."""
    rows = [
        {
            **_cart_row(e, e.data.cart_id, e.data.total),  # type: ignore[attr-defined]
            "converted_order_id": e.data.order_id,  # type: ignore[attr-defined]
            "converted_at": e.occurred_at,
        }
        for e in events
    ]
    created = set(bulk_insert(conn, carts, rows, conflict_keys=["cart_id"], returning="cart_id"))
    existing = [r for r in rows if r["cart_id"] not in created]
    if not existing:
        return
    conn.execute(
        update(carts)
        .where(carts.c.cart_id == bindparam("c_id"), carts.c.converted_at.is_(None))
        .values(converted_order_id=bindparam("o_id"), converted_at=bindparam("at")),
        [
            {"c_id": r["cart_id"], "o_id": r["converted_order_id"], "at": r["converted_at"]}
            for r in existing
        ],
    )


def _cart_row(event: Event, cart_id: str, total: Any) -> dict[str, Any]:
    return {
        "cart_id": cart_id,
        "member_id": event.member_id,
        "total": total,
        "items": event.raw_data.get("items", []),
        "updated_at": event.occurred_at,
    }


def _insert_refunds(conn: Connection, events: Sequence[Event]) -> None:
    if not events:
        return
    rows = [
        {
            "event_id": e.id,
            "order_id": e.data.order_id,  # type: ignore[attr-defined]
            "member_id": e.member_id,
            "amount": e.data.amount,  # type: ignore[attr-defined]
            "refunded_at": e.occurred_at,
        }
        for e in events
    ]
    bulk_insert(conn, refunds, rows, conflict_keys=["event_id"])


def _apply_carts(conn: Connection, events: Sequence[Event]) -> None:
    if not events:
        return
    newest: dict[str, Event] = {}
    for event in events:
        cart_id = event.data.cart_id  # type: ignore[attr-defined]
        if cart_id not in newest or event.occurred_at >= newest[cart_id].occurred_at:
            newest[cart_id] = event
    rows = [_cart_row(e, k, e.data.total) for k, e in newest.items()]  # type: ignore[attr-defined]
    bulk_insert(conn, carts, rows, conflict_keys=["cart_id"])
    conn.execute(
        update(carts)
        .where(carts.c.cart_id == bindparam("c_id"), carts.c.updated_at < bindparam("at"))
        .values(total=bindparam("t"), items=bindparam("i"), updated_at=bindparam("at")),
        [
            {"c_id": r["cart_id"], "t": r["total"], "i": r["items"], "at": r["updated_at"]}
            for r in rows
        ],
    )
