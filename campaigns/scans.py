"""Scheduled triggers: abandoned carts, cron audiences, birthdays, points about to expire.

Each is set-based: one query (or one per chunk of members) finds who qualifies, and
:func:`campaigns.journeys.enrol` enrols them in one statement. Trigger keys make a rerun of the
same firing a no-op: the cart's version, the cron firing, the birthday's year, the expiry date.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, exists, extract, func, literal, or_, select

from campaigns.assignment import control_share
from campaigns.definitions import Campaign
from campaigns.journeys import Candidate, enrol
from campaigns.tables import cart_claims
from campaigns.triggers import basket
from core.cel.history import fetch_histories
from core.cel.variables import VariableSettings, member_variables, now_variables
from core.db import in_values, insert_ignoring_any_conflict
from core.events.tables import carts, members, orders

# A cart that went idle longer ago than this before a scan (no scheduler ran) is not enrolled:
# a reminder about a cart from last month helps no one.
CART_HORIZON = timedelta(days=1)


def _open_carts(campaign: Campaign) -> list[Any]:
    rule = campaign.trigger.cart_abandoned
    assert rule is not None
    return [carts.c.converted_at.is_(None), carts.c.total >= rule.min_total]


def claim_abandoned_carts(conn: Connection, campaign: Campaign, *, now: datetime) -> list[Any]:
    """Claim the carts idle for ``idle_for`` with no order since; returns the claimed carts.

    The claim is one ``INSERT … SELECT … ON CONFLICT DO NOTHING``: two scanners racing get
    disjoint sets, and a cart updated or converted meanwhile no longer matches.
    """
    rule = campaign.trigger.cart_abandoned
    assert rule is not None
    cutoff = now - rule.idle_for
    ordered_since = exists().where(
        orders.c.member_id == carts.c.member_id,
        orders.c.paid_at > carts.c.updated_at,
        orders.c.paid_at <= now,
    )
    claimed_before = exists().where(
        cart_claims.c.campaign_id == campaign.id,
        cart_claims.c.cart_id == carts.c.cart_id,
        cart_claims.c.cart_updated_at == carts.c.updated_at,
    )
    source = select(
        literal(campaign.id),
        carts.c.cart_id,
        carts.c.updated_at,
        carts.c.member_id,
        literal(now, cart_claims.c.claimed_at.type),
    ).where(
        *_open_carts(campaign),
        carts.c.updated_at <= cutoff,
        carts.c.updated_at > cutoff - CART_HORIZON,
        ~ordered_since,
        ~claimed_before,
    )
    columns = ["campaign_id", "cart_id", "cart_updated_at", "member_id", "claimed_at"]
    statement = (
        insert_ignoring_any_conflict(conn, cart_claims)
        .from_select(columns, source)
        .returning(cart_claims.c.cart_id)
    )
    cart_ids = list(conn.execute(statement).scalars())
    if not cart_ids:
        return []
    query = select(carts).where(in_values(conn, carts.c.cart_id, cart_ids))
    return list(conn.execute(query))


def enrol_abandoned_carts(
    conn: Connection, campaign: Campaign, *, now: datetime, control: Decimal = Decimal(0)
) -> list[str]:
    claimed = claim_abandoned_carts(conn, campaign, now=now)
    candidates = [
        Candidate(
            cart.member_id,
            f"cart:{cart.cart_id}:{cart.updated_at.isoformat()}",
            {"cart": basket({"total": cart.total, "items": cart.items}, cart_id=cart.cart_id)},
        )
        for cart in sorted(claimed, key=lambda cart: cart.updated_at)
    ]
    return enrol(conn, campaign, candidates, now=now, control=control)


def next_idle_cart_time(
    conn: Connection, campaign: Campaign, *, after: datetime | None
) -> datetime | None:
    """When the next open cart becomes idle for this campaign, strictly after ``after``."""
    rule = campaign.trigger.cart_abandoned
    assert rule is not None
    query = select(func.min(carts.c.updated_at)).where(*_open_carts(campaign))
    if after is not None:
        query = query.where(carts.c.updated_at > after - rule.idle_for)
    earliest = conn.execute(query).scalar()
    return earliest + rule.idle_for if earliest is not None else None


def audience_members(
    conn: Connection,
    campaign: Campaign,
    member_ids: Sequence[str],
    *,
    program: Any,
    now: datetime,
) -> list[str]:
    """The members among ``member_ids`` whose ``audience:`` is true now (all, without one)."""
    schedule = campaign.trigger.schedule
    assert schedule is not None
    if schedule.audience is None:
        return list(member_ids)
    settings = VariableSettings.from_program(program)
    variables = {"now": now_variables(now, settings.zone)}
    chosen = []
    for member_id, history in fetch_histories(conn, member_ids, program=program).items():
        if history.profile is None:
            continue
        variables["member"] = member_variables(history, settings, at=now)
        if schedule.audience.is_true(variables):
            chosen.append(member_id)
    return chosen


def member_ids_between(conn: Connection, low: str | None, high: str | None) -> list[str]:
    query = select(members.c.member_id).where(members.c.registered_at.is_not(None))
    if low is not None:
        query = query.where(members.c.member_id >= low)
    if high is not None:
        query = query.where(members.c.member_id < high)
    return list(conn.execute(query.order_by(members.c.member_id)).scalars())


def enrol_audience(
    conn: Connection,
    campaign: Campaign,
    member_ids: Sequence[str],
    *,
    fire_time: datetime,
    program: Any,
    now: datetime,
) -> list[str]:
    chosen = audience_members(conn, campaign, member_ids, program=program, now=now)
    key = f"schedule:{fire_time.isoformat()}"
    return enrol(
        conn, campaign, [Candidate(m, key) for m in chosen], now=now, control=control_share(program)
    )


def audience_in_range(
    conn: Connection,
    campaign: Campaign,
    *,
    program: Any,
    now: datetime,
    low: str | None,
    high: str | None,
) -> list[str]:
    """The registered members ``low <= member_id < high`` in the audience now: chosen in SQL
    where the audience translates (campaigns.audience_sql), else evaluated here in Python."""
    from campaigns.audience_sql import audience_member_ids

    chosen = audience_member_ids(conn, campaign, program=program, now=now, low=low, high=high)
    if chosen is None:
        everyone = member_ids_between(conn, low, high)
        chosen = audience_members(conn, campaign, everyone, program=program, now=now)
    return chosen


def enrol_scheduled(
    conn: Connection, campaign: Campaign, member_ids: Sequence[str], *, fire_time: datetime,
    now: datetime, control: Decimal = Decimal(0),
) -> list[str]:  # fmt: skip
    """Enrol members a cron firing chose (its time is the trigger instance)."""
    key = f"schedule:{fire_time.isoformat()}"
    return enrol(conn, campaign, [Candidate(m, key) for m in member_ids], now=now, control=control)


def member_zones(conn: Connection, business_zone: str) -> set[str]:
    """Every time zone a member lives in (members with none live in the business zone)."""
    found = conn.execute(select(members.c.timezone).distinct()).scalars()
    return {zone or business_zone for zone in found}


def next_birthday_firing(zones: set[str], at: time, *, after: datetime) -> datetime | None:
    """The first instant after ``after`` at which it is ``at`` in one of ``zones``."""
    candidates = []
    for name in zones:
        zone = ZoneInfo(name)
        local = after.astimezone(zone)
        for offset in (0, 1):
            moment = datetime.combine(local.date() + timedelta(days=offset), at, tzinfo=zone)
            if moment > after:
                candidates.append(moment)
                break
    return min(candidates, default=None)


def enrol_birthdays(
    conn: Connection,
    campaign: Campaign,
    *,
    business_zone: str,
    now: datetime,
    control: Decimal = Decimal(0),
) -> list[str]:
    """Members in a zone where it is now past ``at`` on the day ``days_before`` their birthday."""
    rule = campaign.trigger.birthday
    assert rule is not None
    candidates = []
    for name in sorted(member_zones(conn, business_zone)):
        local = now.astimezone(ZoneInfo(name))
        if local.time().replace(tzinfo=None) < rule.at:
            continue
        target = local.date() + timedelta(days=rule.days_before)
        for member_id in _born_on(conn, target, zone=name, business_zone=business_zone):
            candidates.append(Candidate(member_id, f"birthday:{target.year}"))
    return enrol(conn, campaign, candidates, now=now, control=control)


def _born_on(conn: Connection, day: date, *, zone: str, business_zone: str) -> list[str]:
    in_zone = members.c.timezone == zone
    if zone == business_zone:
        in_zone = or_(in_zone, members.c.timezone.is_(None))
    days = [day.day]
    if (day.month, day.day) == (2, 28) and not _leap(day.year):
        days.append(29)  # born on 29 February: celebrated on the 28th in other years
    query = select(members.c.member_id).where(
        in_zone,
        members.c.registered_at.is_not(None),
        and_(
            extract("month", members.c.birthday) == day.month,
            extract("day", members.c.birthday).in_(days),
        ),
    )
    return list(conn.execute(query).scalars())


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def enrol_points_expiring(
    conn: Connection, campaign: Campaign, *, program: Any, now: datetime
) -> list[str]:
    from loyalty.expiry import fetch_expiring_points

    rule = campaign.trigger.points_expiring
    assert rule is not None
    found = fetch_expiring_points(
        conn, now=now, within=rule.within, program=program, min_points=rule.min_points
    )
    candidates = [
        Candidate(
            item.member_id,
            f"points_expiring:{item.first_expires_at.date().isoformat()}",
            {
                "points": {
                    "expiring": item.points,
                    "expires_at": item.first_expires_at.isoformat(),
                    "expiring_value": str(item.value),
                }
            },
        )
        for item in found
    ]
    return enrol(conn, campaign, candidates, now=now, control=control_share(program))
