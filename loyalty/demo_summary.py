"""The demo's loyalty part for a whole crowd, fetched set-based: a handful of queries whatever
the number of members (``loyalty.member_view.print_demo_summary`` prints it).

* tiers: members in each tier now, upgrades and downgrades into it over the last
  :data:`MOVES_WINDOW`, and members whose downgrade waits out the grace period;
* points: the ledger's totals by what moved the points, the lots' usable and pending points;
* the :data:`TOP` members by qualifying spend (the tier ladder's net paid over its window);
* referrals by outcome.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, case, func, literal, select

from core.events.tables import members
from core.money import CENT
from loyalty.ladder import TierLadder
from loyalty.limits import fetch_balances
from loyalty.tables import (
    member_tiers,
    points_accounts,
    points_ledger,
    points_lots,
    referrals,
    tier_history,
)
from loyalty.tier_recalc import MemberRange, spend_by_member
from loyalty.tiers_store import fetch_tiers

MOVES_WINDOW = timedelta(days=14)  # the demo's fortnight
TOP = 5
NAME_LOCALE = "en"


@dataclass(frozen=True)
class TierLine:
    """One tier: members in it now, and how many moved into it in the window."""

    tier_id: str
    name: str
    members: int = 0
    up: int = 0  # upgraded into it
    down: int = 0  # downgraded into it
    in_grace: int = 0  # in it but below its threshold: the downgrade waits out the grace


@dataclass(frozen=True)
class PointsTotals:
    """Every member's points together. The entries add up to the lots' points:
    earned + awarded + adjusted + other - redeemed + given_back - taken_back + owed - expired
    = usable + pending + due_to_expire."""

    earned: int = 0  # the earning rules' credits
    awarded: int = 0  # campaigns' award_points
    adjusted: int = 0  # operators' adjustments, signed
    redeemed: int = 0
    given_back: int = 0  # redeemed points that refunds gave back
    taken_back: int = 0  # earned points that refunds took back, owed ones included
    expired: int = 0
    other: int = 0  # entries of a kind this summary does not know, signed
    owed: int = 0  # taken back after they were spent, not yet paid back by new credits
    usable: int = 0
    pending: int = 0  # earned, usable once the return window has passed
    due_to_expire: int = 0  # past their expiry, left for the next expiry run


@dataclass(frozen=True)
class TopMember:
    member_id: str
    first_name: str | None
    tier_id: str
    spend: Decimal
    balance: int
    pending: int


@dataclass(frozen=True)
class ReferralCounts:
    waiting: int = 0  # pending, no qualifying first order yet
    qualified: int = 0  # pending, the first order qualified: settles after the return window
    settled: int = 0  # referral.qualified sent: the campaigns reward both members
    rejected: tuple[tuple[str, int], ...] = ()  # by reason, most first

    @property
    def total(self) -> int:
        return self.waiting + self.qualified + self.settled + sum(n for _, n in self.rejected)


@dataclass(frozen=True)
class LoyaltySummary:
    """The section's numbers at ``now``; no tiers and no top members without a program."""

    now: datetime
    tiers: tuple[TierLine, ...]
    points: PointsTotals
    top: tuple[TopMember, ...]
    referrals: ReferralCounts


def fetch_summary(conn: Connection, *, now: datetime, program: Any) -> LoyaltySummary:
    ladder = TierLadder.from_program(program) if program is not None else None
    return LoyaltySummary(
        now=now,
        tiers=tuple(fetch_tier_lines(conn, ladder, now=now)) if ladder else (),
        points=fetch_points_totals(conn, now=now),
        top=tuple(fetch_top_members(conn, ladder, now=now)) if ladder else (),
        referrals=fetch_referral_counts(conn),
    )


def fetch_tier_lines(conn: Connection, ladder: TierLadder, *, now: datetime) -> list[TierLine]:
    """The ladder's tiers lowest first, then any tier members hold that it no longer has;
    members never tiered count in the lowest."""
    held = func.coalesce(member_tiers.c.tier_id, literal(ladder.lowest.id))
    counts = (
        select(held, func.count(), func.count(member_tiers.c.below_since))
        .select_from(
            members.outerjoin(member_tiers, member_tiers.c.member_id == members.c.member_id)
        )
        .group_by(held)
    )
    to_tier, direction = tier_history.c.to_tier, tier_history.c.direction
    moves = (
        select(to_tier, direction, func.count())
        .where(tier_history.c.changed_at > now - MOVES_WINDOW, tier_history.c.changed_at <= now)
        .group_by(to_tier, direction)
    )
    now_in = {tier: (n, grace) for tier, n, grace in conn.execute(counts)}
    moved = {(tier, way): n for tier, way, n in conn.execute(moves)}
    names = {level.id: level.name(NAME_LOCALE) for level in ladder.levels}
    return [
        TierLine(
            tier_id,
            names.get(tier_id, "(not in the program)"),
            members=now_in.get(tier_id, (0, 0))[0],
            up=moved.get((tier_id, "up"), 0),
            down=moved.get((tier_id, "down"), 0),
            in_grace=now_in.get(tier_id, (0, 0))[1],
        )
        for tier_id in [*names, *sorted(set(now_in) - set(names))]
    ]


def fetch_points_totals(conn: Connection, *, now: datetime) -> PointsTotals:
    """The ledger summed by kind and rule, the lots by where they stand at ``now``, the debts."""
    by_rule = select(
        points_ledger.c.kind,
        points_ledger.c.rule_id,
        func.sum(points_ledger.c.points),
        func.sum(points_ledger.c.debt),
    ).group_by(points_ledger.c.kind, points_ledger.c.rule_id)
    owed = select(func.coalesce(func.sum(points_accounts.c.debt), 0))
    return points_totals(
        [
            (kind, rule, int(points), int(debt))
            for kind, rule, points, debt in conn.execute(by_rule)
        ],
        lots=_lot_totals(conn, now),
        owed=int(conn.execute(owed).scalar_one()),
    )


def _lot_totals(conn: Connection, now: datetime) -> dict[str, int]:
    """Points left in lots: usable, pending (not yet available), due to expire (past expiry;
    the lots ``fetch_points`` no longer shows)."""
    standing = case(
        (points_lots.c.expires_at <= now, "due_to_expire"),
        (points_lots.c.available_at <= now, "usable"),
        else_="pending",
    )
    query = (
        select(standing, func.sum(points_lots.c.remaining))
        .where(points_lots.c.remaining > 0)
        .group_by(standing)
    )
    return {name: int(points) for name, points in conn.execute(query)}


# (kind, rule_id) of a ledger entry → the total it counts in and with which sign (rule_id
# None: any other rule of that kind); None: counted elsewhere.
_COUNTS_IN: dict[tuple[str, str | None], tuple[str, int] | None] = {
    ("earn", "award"): ("awarded", 1),
    ("earn", None): ("earned", 1),
    ("adjust", None): ("adjusted", 1),
    ("redeem", None): ("redeemed", -1),
    ("expire", None): ("expired", -1),
    ("reverse", "refund-restore"): ("given_back", 1),
    ("reverse", "refund"): ("taken_back", -1),  # and its debt: what no lot could cover
    ("reverse", "debt-repayment"): None,  # pays back debt: ``owed`` is what is left of it
}
_LOTS = ("usable", "pending", "due_to_expire")


def points_totals(
    entries: Iterable[tuple[str, str | None, int, int]], *, lots: Mapping[str, int], owed: int
) -> PointsTotals:
    """Totals from the ledger's (kind, rule_id, points, debt) sums and the lots' points."""
    totals: Counter[str] = Counter()
    for kind, rule_id, points, debt in entries:
        key = (kind, rule_id) if (kind, rule_id) in _COUNTS_IN else (kind, None)
        counted = _COUNTS_IN.get(key, ("other", 1))
        if counted is not None:
            name, sign = counted
            totals[name] += sign * points + (debt if name == "taken_back" else 0)
    return PointsTotals(**totals, owed=owed, **{name: lots.get(name, 0) for name in _LOTS})


def fetch_top_members(
    conn: Connection, ladder: TierLadder, *, now: datetime, limit: int = TOP
) -> list[TopMember]:
    """The ``limit`` members with the highest qualifying spend at ``now`` (above zero; ties by
    member id), with their first name, tier and points."""
    cents = conn.dialect.name != "postgresql"  # as the tier recalculation sums money
    spend = spend_by_member(ladder, now, MemberRange(), cents)
    query = (
        select(spend.c.member_id, spend.c.spend)
        .where(spend.c.spend > 0)
        .order_by(spend.c.spend.desc(), spend.c.member_id)
        .limit(limit)
    )
    top = [(member_id, _money(value, cents=cents)) for member_id, value in conn.execute(query)]
    ids = [member_id for member_id, _ in top]
    names = dict(
        conn.execute(
            select(members.c.member_id, members.c.first_name).where(members.c.member_id.in_(ids))
        ).all()
    )
    tiers = fetch_tiers(conn, ids, default=ladder.lowest.id)
    held = fetch_balances(conn, ids, now=now)  # pending included
    usable = fetch_balances(conn, ids, now=now, usable_only=True)
    return [
        TopMember(
            member_id,
            names.get(member_id),
            tiers[member_id],
            spend,
            balance=usable.get(member_id, 0),
            pending=held.get(member_id, 0) - usable.get(member_id, 0),
        )
        for member_id, spend in top
    ]


def _money(value: Any, *, cents: bool) -> Decimal:
    return (Decimal(int(value)) / 100 if cents else Decimal(value)).quantize(CENT)


def fetch_referral_counts(conn: Connection) -> ReferralCounts:
    stage = case((referrals.c.order_id.is_(None), "waiting"), else_="qualified")
    query = select(referrals.c.status, referrals.c.reason, stage, func.count()).group_by(
        referrals.c.status, referrals.c.reason, stage
    )
    return referral_counts(conn.execute(query).all())


def referral_counts(rows: Iterable[tuple[str, str | None, str, int]]) -> ReferralCounts:
    """Counts from (status, reason, stage, count) rows; stage: waiting or qualified."""
    counts: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    for status, reason, stage, n in rows:
        if status == "rejected":
            rejected[reason or "no reason"] += n
        else:
            counts[stage if status == "pending" else status] += n
    return ReferralCounts(
        waiting=counts["waiting"],
        qualified=counts["qualified"],
        settled=counts["settled"],
        rejected=tuple(sorted(rejected.items(), key=lambda item: (-item[1], item[0]))),
    )
