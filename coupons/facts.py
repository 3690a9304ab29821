"""What eligibility knows about a member, fetched once, before any rule runs.

Rules never query: :func:`fetch_member_facts` reads the projections (members, orders, refunds)
and the member's tier (through ``loyalty.tiers_store``) into a frozen :class:`MemberFacts`,
which also builds the CEL ``member`` variable. ``now`` for CEL is in the business time zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from core.events.tables import members, orders, refunds
from coupons.errors import UnknownMember
from loyalty.tiers_store import fetch_tiers

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class MemberFacts:
    member_id: str
    tier: str
    tier_rank: int
    locale: str | None = None
    paid_orders: int = 0
    net_spend: Decimal = ZERO
    qualifying_spend: Decimal = ZERO
    registered_at: datetime | None = None
    last_order_at: datetime | None = None
    birthday: date | None = None
    referrals: int = 0
    referred_by: str | None = None
    consents: dict[str, bool | None] = field(default_factory=dict)

    @property
    def first_order(self) -> bool:
        """Whether an order now would be the member's first paid order."""
        return self.paid_orders == 0

    def cel(self, now: datetime) -> dict[str, Any]:
        """The CEL ``member`` variable (money as float only inside CEL)."""
        return {
            "id": self.member_id,
            "tier": self.tier,
            "tier_rank": self.tier_rank,
            "paid_orders": self.paid_orders,
            "net_spend": float(self.net_spend),
            "qualifying_spend": float(self.qualifying_spend),
            "days_since_registered": _days_since(self.registered_at, now),
            "days_since_last_order": _days_since(self.last_order_at, now),
            "birthday_month": self.birthday.month if self.birthday else None,
            "referrals": self.referrals,
            "referred_by": self.referred_by,
            "locale": self.locale,
            "consents": dict(self.consents),
        }


def _days_since(then: datetime | None, now: datetime) -> int | None:
    return None if then is None else (now - then).days


def now_variables(now: datetime, zone: ZoneInfo) -> dict[str, int]:
    """The CEL ``now`` variable in the business time zone; weekday 0 = Sunday … 6, as in cron."""
    local = now.astimezone(zone)
    return {
        "year": local.year,
        "month": local.month,
        "day": local.day,
        "weekday": local.isoweekday() % 7,
        "hour": local.hour,
    }


def fetch_member_facts(
    conn: Connection, program: Any, member_id: str, *, now: datetime, exclude_order: str = ""
) -> MemberFacts:
    """Everything a coupon rule may ask about the member; ``exclude_order`` is left out of the
    order history (the order being paid, already in the projection when handlers run)."""
    row = conn.execute(select(members).where(members.c.member_id == member_id)).first()
    if row is None:
        raise UnknownMember(member_id)
    levels = program.program_file.tiers.levels
    tier = fetch_tiers(conn, [member_id], default=levels[0].id)[member_id]
    ranks = {level.id: rank for rank, level in enumerate(levels)}
    window = now - timedelta(days=program.program_file.tiers.window_days)
    history = _order_history(conn, member_id, exclude_order, window)
    return MemberFacts(
        member_id=member_id,
        tier=tier,
        tier_rank=ranks.get(tier, 0),
        locale=row.locale,
        registered_at=row.registered_at,
        birthday=row.birthday,
        referred_by=row.referred_by,
        referrals=_referrals(conn, row.referral_code),
        consents={"email": row.consent_email, "sms": row.consent_sms, "push": row.consent_push},
        **history,
    )


def _order_history(
    conn: Connection, member_id: str, exclude_order: str, window: datetime
) -> dict[str, Any]:
    recent = orders.c.paid_at > window
    paid = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(orders.c.total), 0),
            func.max(orders.c.paid_at),
            func.coalesce(func.sum(orders.c.total).filter(recent), 0),
        ).where(orders.c.member_id == member_id, orders.c.order_id != exclude_order)
    ).one()
    refunded = conn.execute(
        select(
            func.coalesce(func.sum(refunds.c.amount), 0),
            func.coalesce(func.sum(refunds.c.amount).filter(refunds.c.refunded_at > window), 0),
        ).where(refunds.c.member_id == member_id, refunds.c.order_id != exclude_order)
    ).one()
    last = paid[2]
    return {
        "paid_orders": paid[0],
        "net_spend": Decimal(paid[1]) - Decimal(refunded[0]),
        "qualifying_spend": Decimal(paid[3]) - Decimal(refunded[1]),
        "last_order_at": last,
    }


def _referrals(conn: Connection, referral_code: str | None) -> int:
    if not referral_code:
        return 0
    query = select(func.count()).where(members.c.referred_by == referral_code)
    return int(conn.execute(query).scalar_one())
