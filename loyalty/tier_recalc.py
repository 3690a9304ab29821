"""The daily tier recalculation: one SQL statement decides, for a range of members, who changes.

The statement sums net paid per member over the trailing window (orders paid in it minus what
was refunded of them, never below zero per order; exact numeric on PostgreSQL, integer cents on
SQLite), full-joins the members' current tier rows, and compares the threshold reached with the
tier held:

* ``up``: a higher threshold is reached (the order handler usually got there first);
* ``pending``: below the tier for the first time; ``below_since`` is set and campaigns get
  ``tier.downgrade_pending`` with the date the downgrade will happen;
* ``down``: below the tier for ``downgrade_grace_days`` (at once when the grace is 0);
* ``recovered``: back at the tier's threshold while a downgrade was pending.

Only those rows come back to Python and only they are written, with history rows and events,
in the job's transaction. Members are split into ranges of member ids (``plan_ranges``) so
several workers can share the run, one actor per range.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    bindparam,
    case,
    func,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy import text as sql_text

from core.db import UtcDateTime
from core.events.handlers import HandlerContext
from core.events.internal import internal_event
from core.events.tables import members, orders, refunds
from core.events.types import Event
from core.money import CENT
from loyalty.calendar import business_zone, local_date
from loyalty.ladder import TierChange, TierLadder
from loyalty.ledger import chunked, lock_accounts
from loyalty.tables import member_tiers
from loyalty.tiers_store import record_tier_changes

# Hash aggregation over a million members spills to disk at PostgreSQL's default 4MB; 256MB
# kept the benchmark's aggregation in memory (docs/bench/loyalty.md).
RECALC_WORK_MEM = "256MB"


@dataclass(frozen=True)
class MemberRange:
    """Members with ``low <= member_id < high`` (None: unbounded)."""

    low: str | None = None
    high: str | None = None

    def where(self, column: Any) -> list[Any]:
        clauses = []
        if self.low is not None:
            clauses.append(column >= self.low)
        if self.high is not None:
            clauses.append(column < self.high)
        return clauses


@dataclass(frozen=True)
class TierDecision:
    member_id: str
    action: str  # up, down, pending, recovered
    from_tier: str
    to_tier: str
    spend: Decimal
    below_since: datetime | None
    held: str | None = None  # the tier row as the statement saw it (None: no row)


@dataclass
class RecalcReport:
    as_of: datetime
    dry_run: bool
    decisions: list[TierDecision] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(d.action == action for d in self.decisions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "dry_run": self.dry_run,
            "counts": {a: self.count(a) for a in ("up", "down", "pending", "recovered")},
            "changes": [vars(d) for d in self.decisions],
        }


def _money(column: Any, *, cents: bool) -> Any:
    """Money as SQL sums it exactly: numeric on PostgreSQL, integer cents on SQLite (where
    ``core.db.Money`` stores cents; read raw here, as integers)."""
    return type_coerce(column, BigInteger) if cents else column


def spend_by_member(
    ladder: TierLadder, as_of: datetime, members_in: MemberRange, cents: bool
) -> Any:
    """Net paid per member over the window ending at ``as_of``: a subquery of (member_id,
    spend), spend in integer cents when ``cents`` (SQLite); members without orders in the
    window have no row."""
    refunded = (
        select(refunds.c.order_id, func.sum(_money(refunds.c.amount, cents=cents)).label("sum"))
        .where(refunds.c.refunded_at <= as_of, *members_in.where(refunds.c.member_id))
        .group_by(refunds.c.order_id)
        .subquery("refunded")
    )
    net = _money(orders.c.total, cents=cents) - func.coalesce(refunded.c.sum, 0)
    return (
        select(orders.c.member_id, func.sum(case((net > 0, net), else_=0)).label("spend"))
        .select_from(orders.outerjoin(refunded, refunded.c.order_id == orders.c.order_id))
        .where(
            orders.c.paid_at > as_of - ladder.window,
            orders.c.paid_at <= as_of,
            *members_in.where(orders.c.member_id),
        )
        .group_by(orders.c.member_id)
        .subquery("spend")
    )


def _action(
    target: Any, current: Any, below_since: Any, *, ladder: TierLadder, as_of: datetime
) -> Any:
    since = func.coalesce(below_since, literal(as_of, UtcDateTime()))
    return case(
        (target > current, "up"),
        (and_(target < current, since <= literal(as_of - ladder.grace, UtcDateTime())), "down"),
        (and_(target < current, below_since.is_(None)), "pending"),
        (and_(target >= current, below_since.is_not(None)), "recovered"),
        else_="none",
    )


def decision_query(
    ladder: TierLadder, *, as_of: datetime, members_in: MemberRange, cents: bool = False
) -> Any:
    """The one statement: every member in range whose tier row must change, and how."""
    spend = spend_by_member(ladder, as_of, members_in, cents)
    held = select(member_tiers).where(*members_in.where(member_tiers.c.member_id)).subquery("held")
    total = func.coalesce(spend.c.spend, 0)
    thresholds = [
        (level.min_spend * 100 if cents else level.min_spend, level.rank)
        for level in reversed(ladder.levels[1:])
    ]
    target = case(*[(total >= least, rank) for least, rank in thresholds], else_=0)
    current = case(
        (held.c.tier_id.is_(None), 0),
        *[(held.c.tier_id == level.id, level.rank) for level in ladder.levels],
        else_=-1,
    )
    decided = select(
        func.coalesce(spend.c.member_id, held.c.member_id).label("member_id"),
        total.label("spend"),
        held.c.tier_id,
        held.c.below_since,
        target.label("target"),
        _action(target, current, held.c.below_since, ladder=ladder, as_of=as_of).label("action"),
    ).select_from(spend.join(held, spend.c.member_id == held.c.member_id, full=True))
    decided_sq = decided.subquery("decided")
    return select(decided_sq).where(decided_sq.c.action != "none")


def fetch_decisions(
    conn: Connection, ladder: TierLadder, *, as_of: datetime, members_in: MemberRange
) -> list[TierDecision]:
    cents = conn.dialect.name != "postgresql"
    if not cents:
        conn.execute(sql_text(f"SET LOCAL work_mem = '{RECALC_WORK_MEM}'"))
    query = decision_query(ladder, as_of=as_of, members_in=members_in, cents=cents)
    return [
        TierDecision(
            member_id=row.member_id,
            action=row.action,
            from_tier=row.tier_id or ladder.lowest.id,
            to_tier=ladder.levels[row.target].id,
            spend=(Decimal(int(row.spend)) / 100 if cents else Decimal(row.spend)).quantize(CENT),
            below_since=row.below_since,
            held=row.tier_id,
        )
        for row in conn.execute(query)
    ]


def recalculate_tiers(
    ctx: HandlerContext,
    *,
    as_of: datetime,
    program: Any,
    members_in: MemberRange | None = None,
    dry_run: bool = False,
) -> RecalcReport:
    """Recalculate the tiers of a range of members (default: all) as of ``as_of``."""
    ladder = TierLadder.from_program(program)
    decisions = fetch_decisions(
        ctx.conn, ladder, as_of=as_of, members_in=members_in or MemberRange()
    )
    if not dry_run:  # the report then lists what was written
        decisions = _apply(ctx, decisions, ladder=ladder, as_of=as_of, program=program)
    return RecalcReport(as_of=as_of, dry_run=dry_run, decisions=decisions)


def _apply(
    ctx: HandlerContext,
    decisions: list[TierDecision],
    *,
    ladder: TierLadder,
    as_of: datetime,
    program: Any,
) -> list[TierDecision]:
    decisions = _still_current(ctx.conn, decisions, now=ctx.now)
    cause = f"recalc:{as_of.isoformat()}"
    record_tier_changes(
        ctx,
        [
            TierChange(d.member_id, d.from_tier, d.to_tier, d.action, d.spend, as_of, cause)
            for d in decisions
            if d.action in ("up", "down")
        ],
    )
    pending = [d for d in decisions if d.action == "pending"]
    recovered = [d.member_id for d in decisions if d.action == "recovered"]
    _set_below_since(ctx.conn, [d.member_id for d in pending], as_of, now=ctx.now)
    _set_below_since(ctx.conn, recovered, None, now=ctx.now)
    zone = business_zone(program)
    ctx.emit([_pending_event(d, ladder=ladder, as_of=as_of, zone=zone) for d in pending])
    return decisions


def _still_current(
    conn: Connection, decisions: list[TierDecision], *, now: datetime
) -> list[TierDecision]:
    """Take the members' account locks (the order handler holds them while it upgrades) and
    keep the decisions whose tier row is still as the statement saw it; a member upgraded
    meanwhile is decided again by the next run."""
    ids = [d.member_id for d in decisions]
    lock_accounts(conn, ids, now=now)
    seen: dict[str, tuple[str | None, datetime | None]] = {}
    for part in chunked(sorted(ids)):
        query = select(
            member_tiers.c.member_id, member_tiers.c.tier_id, member_tiers.c.below_since
        ).where(member_tiers.c.member_id.in_(part))
        seen.update((m, (tier, below)) for m, tier, below in conn.execute(query))
    return [d for d in decisions if seen.get(d.member_id, (None, None)) == (d.held, d.below_since)]


def _pending_event(
    decision: TierDecision, *, ladder: TierLadder, as_of: datetime, zone: ZoneInfo
) -> Event:
    """``tier.downgrade_pending``, carrying when the downgrade will happen."""
    when = as_of + ladder.grace
    return internal_event(
        event_id=f"tier.downgrade_pending:{decision.member_id}:{as_of.isoformat()}",
        type="tier.downgrade_pending",
        member_id=decision.member_id,
        occurred_at=as_of,
        data={
            "from": decision.from_tier,
            "to": decision.to_tier,
            "qualifying_spend": str(decision.spend),
            "keep_needs": str(ladder.level(decision.from_tier).min_spend),
            "downgrade_at": when.isoformat(),
            "downgrade_on": local_date(when, zone).isoformat(),
        },
    )


def _set_below_since(
    conn: Connection, member_ids: list[str], value: datetime | None, *, now: datetime
) -> None:
    if member_ids:
        conn.execute(
            update(member_tiers)
            .where(member_tiers.c.member_id == bindparam("m"))
            .values(below_since=value, updated_at=now),
            [{"m": member_id} for member_id in member_ids],
        )


def plan_ranges(conn: Connection, *, chunks: int) -> list[MemberRange]:
    """``chunks`` ranges of about equally many members, covering every possible member id."""
    if chunks <= 1:
        return [MemberRange()]
    bucket = func.ntile(chunks).over(order_by=members.c.member_id).label("bucket")
    ranked = select(members.c.member_id, bucket).subquery()
    lows = list(
        conn.execute(
            select(func.min(ranked.c.member_id)).group_by(ranked.c.bucket).order_by(ranked.c.bucket)
        ).scalars()
    )
    bounds = [None, *lows[1:], None]
    return [MemberRange(low, high) for low, high in itertools.pairwise(bounds)]
