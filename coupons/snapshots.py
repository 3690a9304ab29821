"""Frozen snapshots the repositories fetch and the pure rules read: wallet entries, usage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

ZERO = Decimal("0.00")

ISSUED = "issued"
RESERVED = "reserved"
REDEEMED = "redeemed"
EXPIRED = "expired"
REVOKED = "revoked"
STATUSES = (ISSUED, RESERVED, REDEEMED, EXPIRED, REVOKED)


@dataclass(frozen=True)
class WalletCoupon:
    """One code: whose it is (None: generated, not yet claimed), its state and its dates."""

    code: str
    coupon_id: str
    member_id: str | None
    status: str
    issued_at: datetime
    expires_at: datetime | None = None
    order_id: str | None = None
    reserved_until: datetime | None = None
    discount: Decimal | None = None

    @classmethod
    def from_row(cls, row: Any) -> WalletCoupon:
        return cls(
            code=row.code,
            coupon_id=row.coupon_id,
            member_id=row.member_id,
            status=row.status,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            order_id=row.order_id,
            reserved_until=row.reserved_until,
            discount=row.discount,
        )

    def reservation_lapsed(self, now: datetime) -> bool:
        return (
            self.status == RESERVED
            and self.reserved_until is not None
            and self.reserved_until <= now
        )

    def effective_status(self, now: datetime) -> str:
        """The status as of ``now``, before the jobs catch up (a lapsed hold is released, a
        code past its expiry is expired)."""
        status = ISSUED if self.reservation_lapsed(now) else self.status
        if status == ISSUED and self.expires_at is not None and self.expires_at <= now:
            return EXPIRED
        return status


@dataclass(frozen=True)
class CouponUsage:
    """How much of a coupon's limits is taken: all members' uses and this member's."""

    used: int = 0
    spent: Decimal = ZERO
    member_uses: tuple[datetime, ...] = ()

    def member_uses_since(self, period: timedelta | None, now: datetime) -> list[datetime]:
        """This member's uses that still count (all of them when there is no period)."""
        if period is None:
            return list(self.member_uses)
        return [at for at in self.member_uses if at > now - period]


NO_USAGE = CouponUsage()
