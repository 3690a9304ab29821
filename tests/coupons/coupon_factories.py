"""Builders for coupon tests: carts, member facts, wallet entries, events, extra coupons."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from core.events.intake import IngestReport, Intake, ingest
from core.program.loader import Program
from coupons.carts import Cart, CartLine
from coupons.definitions import CouponDefinition
from coupons.facts import MemberFacts
from coupons.snapshots import WalletCoupon
from loyalty.tiers_store import write_tier

NOW = datetime(2027, 4, 5, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai, inside the spring harvest
TIER_RANKS = {"leaf": 0, "bud": 1, "oolong": 2, "puer": 3}


def line(category: str, price: str, qty: int = 1, sku: str | None = None) -> CartLine:
    return CartLine(sku or f"{category}-{price}", category, category, Decimal(price), qty)


def cart(*lines: CartLine, total: str | None = None, shipping: str | None = None) -> Cart:
    return Cart.of(
        lines,
        total=Decimal(total) if total else None,
        shipping=Decimal(shipping) if shipping else None,
    )


def facts(tier: str = "leaf", *, paid_orders: int = 0, locale: str = "en") -> MemberFacts:
    """A member's facts as core builds them (every CEL field, these values where they matter)."""
    return MemberFacts.of(
        {
            "id": "m-1",
            "tier": tier,
            "tier_rank": TIER_RANKS[tier],
            "paid_orders": paid_orders,
            "net_spend": 0.0,
            "qualifying_spend": 0.0,
            "days_since_registered": 30,
            "days_since_last_order": 3 if paid_orders else None,
            "birthday_month": None,
            "referrals": 0,
            "referred_by": None,
            "locale": locale,
            "consents": {"email": False, "sms": False, "push": False},
        }
    )


def entry(
    coupon_id: str,
    *,
    code: str | None = None,
    status: str = "issued",
    expires_at: datetime | None = None,
    issued_at: datetime = NOW - timedelta(days=1),
) -> WalletCoupon:
    return WalletCoupon(
        code=code or coupon_id,
        coupon_id=coupon_id,
        member_id="m-1",
        status=status,
        issued_at=issued_at,
        expires_at=expires_at,
    )


def with_coupons(program: Program, *definitions: dict[str, Any]) -> Program:
    """The program with extra coupons (validated like coupons.yaml entries)."""
    extra = {d["id"]: CouponDefinition.model_validate(d) for d in definitions}
    return replace(program, coupons={**program.coupons, **extra})


def registered(member_id: str, *, locale: str = "en", at: datetime = NOW) -> dict[str, Any]:
    return {
        "id": f"reg-{member_id}",
        "type": "member.registered",
        "occurred_at": (at - timedelta(days=30)).isoformat(),
        "member_id": member_id,
        "data": {"first_name": member_id, "locale": locale, "timezone": "Asia/Shanghai"},
    }


def paid(
    member_id: str,
    order_id: str,
    *,
    items: list[dict[str, Any]],
    codes: list[str] = (),  # type: ignore[assignment]
    at: datetime = NOW,
    total: str | None = None,
) -> dict[str, Any]:
    amount = total or str(sum(Decimal(i["price"]) * i.get("qty", 1) for i in items))
    return {
        "id": f"paid-{order_id}",
        "type": "order.paid",
        "occurred_at": at.isoformat(),
        "member_id": member_id,
        "data": {"order_id": order_id, "total": amount, "items": items, "coupon_codes": codes},
    }


def refunded(order_id: str, member_id: str, amount: str, *, at: datetime = NOW) -> dict[str, Any]:
    return {
        "id": f"refund-{order_id}-{amount}",
        "type": "order.refunded",
        "occurred_at": at.isoformat(),
        "member_id": member_id,
        "data": {"order_id": order_id, "amount": amount},
    }


def item(category: str, price: str, qty: int = 1) -> dict[str, Any]:
    return {
        "sku": f"{category}-1",
        "name": category,
        "category": category,
        "price": price,
        "qty": qty,
    }


def send(
    engine: Engine, program: Program | None, *events: dict[str, Any], now: datetime = NOW
) -> IngestReport:
    report = ingest(list(events), Intake(engine=engine, now=now, source="test", program=program))
    assert report.rejected == 0, report.rejections
    return report


def set_tier(engine: Engine, member_id: str, tier: str, *, now: datetime = NOW) -> None:
    with engine.begin() as conn:
        write_tier(conn, member_id, tier, qualifying_spend=Decimal("0.00"), now=now)
