"""A batch of shop events, turned into points and tier upgrades: fetch, plan (pure), write.

For each batch the members' account rows are locked, their snapshots fetched in a few queries,
and ``plan_activity`` walks the events in time order: each earns at the tier held before it
(an upgrade planned earlier in the batch included), a paid order may move its member up at
once, and a refund asks for its order's points to be reconciled. The plan is then written in
that same order, credits in bulk between reconciliations.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from core.events.handlers import HandlerContext
from core.events.types import Event, OrderPaid, OrderRefunded
from loyalty.calendar import period_start
from loyalty.earning import CapKey, Credit, EarnRules, cap_key, credits_for_event
from loyalty.ladder import TierChange, TierLadder, net_spend, upgrade_for
from loyalty.ledger import lock_accounts
from loyalty.points import record_credits
from loyalty.refunds import reconcile_order
from loyalty.tables import points_ledger
from loyalty.tiers_store import record_tier_changes
from loyalty.variables import MemberSnapshot, event_variables, fetch_snapshots, member_variables


@dataclass(frozen=True)
class Reconcile:
    """Bring an order's points in line with its refunds (keyed by the triggering event)."""

    order_id: str
    trigger: str
    at: datetime


@dataclass
class ActivityPlan:
    steps: list[Credit | Reconcile] = field(default_factory=list)
    upgrades: list[TierChange] = field(default_factory=list)


def plan_activity(
    events: Sequence[Event],
    snapshots: dict[str, MemberSnapshot],
    *,
    rules: EarnRules,
    ladder: TierLadder,
    caps_used: Counter[CapKey],
) -> ActivityPlan:
    """Pure: what the events earn, reverse and upgrade, in the order they happened."""
    plan = ActivityPlan()
    upgraded: dict[str, TierChange] = {}
    reads: dict[str, frozenset[str]] = {}
    for event in sorted(events, key=lambda e: (e.occurred_at, e.id)):
        snapshot = snapshots.get(event.member_id) or MemberSnapshot(event.member_id)
        if isinstance(event.data, OrderRefunded):
            plan.steps.append(Reconcile(event.data.order_id, event.id, event.occurred_at))
            continue
        earlier = upgraded.get(event.member_id)
        held = earlier.to_tier if earlier else snapshot.tier_at(event.occurred_at)
        level = ladder.level(held)
        wanted = reads.setdefault(event.type, rules.reads(event.type))
        member = (
            member_variables(snapshot, level, ladder, at=event.occurred_at)
            if "member" in wanted
            else None
        )
        variables = event_variables(event, zone=rules.zone, member=member, wanted=wanted)
        plan.steps += credits_for_event(
            event, rules=rules, level=level, variables=variables, caps_used=caps_used
        )
        if isinstance(event.data, OrderPaid):
            change = _upgrade(event, event.data, snapshot, ladder, earlier)
            if change:
                upgraded[event.member_id] = change
                plan.upgrades.append(change)
            if any(r.order_id == event.data.order_id for r in snapshot.refunds):
                plan.steps.append(Reconcile(event.data.order_id, event.id, event.occurred_at))
    return plan


def _upgrade(
    event: Event,
    data: OrderPaid,
    snapshot: MemberSnapshot,
    ladder: TierLadder,
    earlier: TierChange | None,
) -> TierChange | None:
    spend = net_spend(snapshot.orders, snapshot.refunds, at=event.occurred_at, window=ladder.window)
    current = earlier.to_tier if earlier else snapshot.tier_id
    return upgrade_for(
        ladder,
        event.member_id,
        current,
        spend,
        at=event.occurred_at,
        cause=f"order:{data.order_id}",
    )


def fetch_caps_used(conn: Connection, events: Sequence[Event], rules: EarnRules) -> Counter[CapKey]:
    """Awards already made in the business periods the batch's capped events fall in."""
    used: Counter[CapKey] = Counter()
    capped = [r for r in rules.capped() if any(e.type == r.on for e in events)]
    if not capped:
        return used
    starts = [
        period_start(e.occurred_at, r.cap.per, rules.zone)  # type: ignore[union-attr]
        for r in capped
        for e in events
        if e.type == r.on
    ]
    by_id = {rule.id: rule for rule in capped}
    query = select(
        points_ledger.c.member_id, points_ledger.c.rule_id, points_ledger.c.occurred_at
    ).where(
        points_ledger.c.kind == "earn",
        points_ledger.c.rule_id.in_(list(by_id)),
        points_ledger.c.member_id.in_(sorted({e.member_id for e in events})),
        points_ledger.c.occurred_at >= min(starts),
    )
    for member_id, rule_id, occurred_at in conn.execute(query):
        used[cap_key(by_id[rule_id], member_id, occurred_at, rules.zone)] += 1
    return used


def process_activity(ctx: HandlerContext, events: Sequence[Event], *, program: Any) -> None:
    """Earn, reverse and upgrade for a batch of events, in the intake transaction."""
    conn, now = ctx.conn, ctx.now
    rules, ladder = EarnRules.from_program(program), TierLadder.from_program(program)
    debts = lock_accounts(conn, [e.member_id for e in events], now=now)
    snapshots = fetch_snapshots(conn, [e.member_id for e in events])
    plan = plan_activity(
        events,
        snapshots,
        rules=rules,
        ladder=ladder,
        caps_used=fetch_caps_used(conn, events, rules),
    )
    credits: list[Credit] = []
    for step in plan.steps:
        if isinstance(step, Credit):
            credits.append(step)
            continue
        record_credits(conn, credits, now=now, debts=debts)
        credits = []
        reconcile_order(conn, step.order_id, trigger=step.trigger, at=step.at, now=now, debts=debts)
    record_credits(conn, credits, now=now, debts=debts)
    record_tier_changes(ctx, plan.upgrades)
