"""What earning rules see: frozen member snapshots fetched per batch, and the CEL variables built
from them (``member``, ``event``, ``order``, ``now``; CONTRACT.md, "when:")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from core.events.tables import members, orders, refunds
from core.events.types import Event, OrderPaid
from loyalty.calendar import now_variables
from loyalty.ladder import Level, PaidOrder, Refund, TierLadder, net_spend
from loyalty.tables import member_tiers, referrals, tier_history


@dataclass(frozen=True)
class MemberSnapshot:
    """A member as the rules see them: profile, orders and refunds, tier and its history."""

    member_id: str
    registered_at: datetime | None = None
    birthday: date | None = None
    locale: str | None = None
    consents: dict[str, bool | None] = field(default_factory=dict)
    referred_by: str | None = None
    orders: tuple[PaidOrder, ...] = ()
    refunds: tuple[Refund, ...] = ()
    tier_id: str | None = None
    # (changed_at, from_tier) of each change, oldest first: the tier held at any past time.
    changes: tuple[tuple[datetime, str | None], ...] = ()
    referrals: int = 0

    def tier_at(self, at: datetime) -> str | None:
        """The tier held just before ``at``: the one the first later change moved away from."""
        for changed_at, from_tier in self.changes:
            if changed_at > at:
                return from_tier
        return self.tier_id


def fetch_snapshots(conn: Connection, member_ids: Sequence[str]) -> dict[str, MemberSnapshot]:
    """One query per table for the whole batch of members."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    paid = _grouped(
        conn,
        select(orders.c.member_id, orders.c.order_id, orders.c.paid_at, orders.c.total),
        orders.c.member_id.in_(ids),
        lambda r: PaidOrder(r.order_id, r.paid_at, r.total),
    )
    refunded = _grouped(
        conn,
        select(refunds),
        refunds.c.member_id.in_(ids),
        lambda r: Refund(r.order_id, r.amount, r.refunded_at, event_id=r.event_id),
    )
    changes = _grouped(
        conn,
        select(tier_history).order_by(tier_history.c.changed_at),
        tier_history.c.member_id.in_(ids),
        lambda r: (r.changed_at, r.from_tier),
    )
    tiers, counts, profiles = _member_rows(conn, ids)
    return {
        m: _snapshot(
            m, profiles.get(m), paid[m], refunded[m], tiers.get(m), changes[m], counts.get(m, 0)
        )
        for m in ids
    }


def _member_rows(
    conn: Connection, ids: list[str]
) -> tuple[dict[str, str], dict[str, int], dict[str, Any]]:
    """Tier held, referrals settled and the profile row, per member."""
    tiers: dict[str, str] = dict(
        conn.execute(
            select(member_tiers.c.member_id, member_tiers.c.tier_id).where(
                member_tiers.c.member_id.in_(ids)
            )
        ).all()
    )
    counts: dict[str, int] = dict(
        conn.execute(
            select(referrals.c.referrer_id, func.count())
            .where(referrals.c.referrer_id.in_(ids), referrals.c.status == "settled")
            .group_by(referrals.c.referrer_id)
        ).all()
    )
    profiles = {
        r.member_id: r for r in conn.execute(select(members).where(members.c.member_id.in_(ids)))
    }
    return tiers, counts, profiles


def _grouped(
    conn: Connection, query: Any, where: Any, build: Callable[[Any], Any]
) -> dict[str, list[Any]]:
    """The query's rows, built and grouped by their ``member_id``."""
    grouped: dict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(query.where(where)):
        grouped[row.member_id].append(build(row))
    return grouped


def _snapshot(
    member_id: str,
    profile: Any,
    paid: list[PaidOrder],
    refunded: list[Refund],
    tier_id: str | None,
    changes: list[tuple[datetime, str | None]],
    referral_count: int,
) -> MemberSnapshot:
    return MemberSnapshot(
        member_id=member_id,
        registered_at=profile.registered_at if profile else None,
        birthday=profile.birthday if profile else None,
        locale=profile.locale if profile else None,
        consents={
            "email": profile.consent_email if profile else None,
            "sms": profile.consent_sms if profile else None,
            "push": profile.consent_push if profile else None,
        },
        referred_by=profile.referred_by if profile else None,
        orders=tuple(sorted(paid, key=lambda o: o.paid_at)),
        refunds=tuple(refunded),
        tier_id=tier_id,
        changes=tuple(changes),
        referrals=referral_count,
    )


def member_variables(
    snapshot: MemberSnapshot, level: Level, ladder: TierLadder, *, at: datetime
) -> dict[str, Any]:
    """CEL's ``member`` as of ``at`` (money as float: CEL only, never for arithmetic)."""
    past = [order for order in snapshot.orders if order.paid_at <= at]
    registered = snapshot.registered_at
    return {
        "id": snapshot.member_id,
        "tier": level.id,
        "tier_rank": level.rank,
        "paid_orders": len(past),
        "net_spend": float(net_spend(past, snapshot.refunds, at=at, window=None)),
        "qualifying_spend": float(net_spend(past, snapshot.refunds, at=at, window=ladder.window)),
        "days_since_registered": (at - registered).days if registered else None,
        "days_since_last_order": (at - past[-1].paid_at).days if past else None,
        "birthday_month": snapshot.birthday.month if snapshot.birthday else None,
        "referrals": snapshot.referrals,
        "referred_by": snapshot.referred_by,
        "locale": snapshot.locale,
        "consents": dict(snapshot.consents),
    }


def cel_value(value: Any) -> Any:
    """Decimal to float and dates to ISO text, recursively: values CEL can compare."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: cel_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [cel_value(item) for item in value]
    return value


def order_variables(data: OrderPaid) -> dict[str, Any]:
    items = [cel_value(item.model_dump()) for item in data.items]
    return {
        "total": float(data.total),
        "item_count": sum(item.qty for item in data.items),
        "categories": sorted({item.category for item in data.items if item.category}),
        "items": items,
    }


def event_variables(
    event: Event,
    *,
    zone: ZoneInfo,
    member: dict[str, Any] | None,
    wanted: frozenset[str] = frozenset({"event", "now", "order"}),
) -> dict[str, Any]:
    """The CEL variables an earning rule may use for ``event`` (only those ``wanted``: building
    them is most of the cost of a rule)."""
    variables: dict[str, Any] = {"member": member or {}}
    if "event" in wanted:
        data = cel_value(event.data.model_dump())
        variables["event"] = {"type": event.type, "occurred_at": event.occurred_at, "data": data}
    if "now" in wanted:
        variables["now"] = now_variables(event.occurred_at, zone)
    if "order" in wanted and isinstance(event.data, OrderPaid):
        variables["order"] = order_variables(event.data)
    return variables
