"""A batch of shop events, turned into points and tier upgrades: fetch, plan (pure), write.

For each batch the members' account rows are locked, their snapshots fetched in a few queries,
and ``plan_activity`` walks the events in time order: each earns at the tier held before it
(an upgrade planned earlier in the batch included), a paid order may move its member up at
once, a paid order's ``points_redeemed`` is redeemed (``loyalty.order_redemption``: before
the points the order itself earns, after what the member's earlier events earned), and a
refund asks for its order's points to be reconciled. The plan is then written in that same
order, credits in bulk between redemptions and reconciliations; the paid orders' checkout
holds are dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, select

from core.cel.history import MemberHistory, Moments, fetch_histories
from core.cel.variables import VariableSettings, event_variables, member_variables
from core.events.handlers import HandlerContext
from core.events.types import Event, OrderPaid, OrderRefunded
from loyalty.calendar import period_start
from loyalty.earning import (
    CapKey,
    ConditionMemo,
    Credit,
    EarnRules,
    cap_key,
    credits_for_event,
)
from loyalty.holds import release_paid_holds
from loyalty.ladder import Level, TierChange, TierLadder, net_spend, upgrade_for
from loyalty.ledger import lock_accounts
from loyalty.order_redemption import REFUSED_TALLY, RedeemOrder, redeem_paid_orders
from loyalty.points import record_credits
from loyalty.refunds import reconcile_orders
from loyalty.tables import points_ledger
from loyalty.tiers_store import record_tier_changes
from loyalty.variables import tier_facts


@dataclass(frozen=True)
class Reconcile:
    """Bring an order's points in line with its refunds (keyed by the triggering event)."""

    order_id: str
    trigger: str
    at: datetime


Step = Credit | Reconcile | RedeemOrder


@dataclass
class ActivityPlan:
    steps: list[Step] = field(default_factory=list)
    upgrades: list[TierChange] = field(default_factory=list)


def plan_activity(
    events: Sequence[Event],
    histories: dict[str, MemberHistory],
    *,
    rules: EarnRules,
    ladder: TierLadder,
    caps_used: Counter[CapKey],
) -> ActivityPlan:
    """Pure: what the events earn, reverse and upgrade, in the order they happened."""
    plan = ActivityPlan()
    upgraded: dict[str, TierChange] = {}
    reads: dict[str, tuple[frozenset[str], frozenset[str] | None]] = {}
    memo = ConditionMemo()
    settings = VariableSettings(rules.zone, ladder.window)
    for event in sorted(events, key=lambda e: (e.occurred_at, e.id)):
        history = histories.get(event.member_id) or MemberHistory(event.member_id)
        if isinstance(event.data, OrderRefunded):
            plan.steps.append(Reconcile(event.data.order_id, event.id, event.occurred_at))
            continue
        earlier = upgraded.get(event.member_id)
        tiers = tier_facts(history, ladder)
        held = (
            earlier.to_tier
            if earlier
            else tiers.tier_at(event.occurred_at, exclude_order=_paying(event))
        )
        level = ladder.level(held)
        if event.type not in reads:
            reads[event.type] = (rules.reads(event.type), rules.member_fields(event.type))
        wanted, fields = reads[event.type]
        variables = _variables(event, history, level, settings, wanted=wanted, fields=fields)
        redemption = RedeemOrder.of(event)
        if redemption is not None:  # the order's own points never pay for it
            plan.steps.append(redemption)
        plan.steps += credits_for_event(
            event, rules=rules, level=level, variables=variables, caps_used=caps_used, memo=memo
        )
        if isinstance(event.data, OrderPaid):
            change = _upgrade(event, event.data, history, ladder, earlier, tiers.tier_id)
            if change:
                upgraded[event.member_id] = change
                plan.upgrades.append(change)
            if any(r.order_id == event.data.order_id for r in history.refunds):
                plan.steps.append(Reconcile(event.data.order_id, event.id, event.occurred_at))
    return plan


def _paying(event: Event) -> str | None:
    """The order an ``order.paid`` judges (left out of ``member``: the member before it)."""
    return event.data.order_id if isinstance(event.data, OrderPaid) else None


def _variables(
    event: Event,
    history: MemberHistory,
    level: Level,
    settings: VariableSettings,
    *,
    wanted: frozenset[str],
    fields: frozenset[str] | None,
) -> dict[str, Any]:
    """The CEL variables the event's rules read (of ``member``, only the ``fields`` they
    read); ``member.tier`` is the tier it earns at."""
    variables = event_variables(event, settings.zone, wanted=wanted)
    if "member" in wanted:
        variables["member"] = member_variables(
            history,
            settings,
            at=event.occurred_at,
            exclude_order=_paying(event),
            overrides={"tier": level.id, "tier_rank": level.rank},
            fields=fields,
        )
    return variables


def _upgrade(
    event: Event,
    data: OrderPaid,
    history: MemberHistory,
    ladder: TierLadder,
    earlier: TierChange | None,
    tier_id: str | None,
) -> TierChange | None:
    spend = net_spend(history.orders, history.refunds, at=event.occurred_at, window=ladder.window)
    current = earlier.to_tier if earlier else tier_id
    return upgrade_for(
        ladder,
        event.member_id,
        current,
        spend,
        at=event.occurred_at,
        cause=f"order:{data.order_id}",
    )


def fields_read(events: Sequence[Event], rules: EarnRules) -> frozenset[str] | None:
    """The ``member`` fields planning the events reads (None: all): those their rules read, and
    the tier (the tier ladder's own facts)."""
    fields = {"tier", "tier_rank"}
    for event_type in {event.type for event in events}:
        if "member" not in rules.reads(event_type):
            continue
        read = rules.member_fields(event_type)
        if read is None:
            return None
        fields |= read
    return frozenset(fields)


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
    # A refund plans from its order's ledger (loyalty.refunds), never from the member's history.
    earning = [e for e in events if not isinstance(e.data, OrderRefunded)]
    histories = fetch_histories(
        conn,
        [e.member_id for e in earning],
        program=program,
        fields=fields_read(events, rules),
        moments=Moments.of(earning, ladder.window),
    )
    plan = plan_activity(
        events,
        histories,
        rules=rules,
        ladder=ladder,
        caps_used=fetch_caps_used(conn, events, rules),
    )
    members = {event.id: event.member_id for event in events}
    refused = 0
    for index, steps in enumerate(write_rounds(plan.steps, members)):
        if index % 2 == 0:
            credits = [step for step in steps if isinstance(step, Credit)]
            record_credits(conn, credits, now=now, debts=debts)
            continue
        # Redemptions and reconciliations draw on the same lots: in plan order, run by run.
        for kind, run in groupby(steps, key=type):
            if kind is RedeemOrder:
                redeems = [step for step in run if isinstance(step, RedeemOrder)]
                refused += len(redeem_paid_orders(conn, redeems, now=now, program=program))
            else:
                requests = [step for step in run if isinstance(step, Reconcile)]
                reconcile_orders(conn, requests, now=now, debts=debts)
    if refused:
        ctx.tally(REFUSED_TALLY, refused)
    paid = [(e.data.order_id, e.member_id) for e in events if isinstance(e.data, OrderPaid)]
    release_paid_holds(conn, paid)
    record_tier_changes(ctx, plan.upgrades)


def write_rounds(steps: Sequence[Step], members: dict[str, str]) -> list[list[Step]]:
    """The plan's steps in rounds to write in bulk: credits in even rounds, redemptions and
    reconciliations (both draw on lots) in odd ones. Each member's steps are cut into runs of
    one kind, and a member's k-th run goes to the first round of its kind after the round of
    its (k-1)-th run, so a member's steps are written in event order (a take-back's debt is
    paid by the member's later credit, a refund sees the points of an order before it, a
    redemption the points earned before it). Only a member's own steps depend on each other:
    a credit and a redemption name their member, and a reconciliation touches the lots and
    debt of its order's member, the member of the event that asked for it (``members``: event
    id → member), since intake rejects a refund under another member than its order's.
    """
    rounds: list[list[Step]] = []
    last: dict[str, int] = {}
    for step in steps:
        kind, member = (
            (1, members[step.trigger]) if isinstance(step, Reconcile) else (0, step.member_id)
        )
        if isinstance(step, RedeemOrder):
            kind = 1
        index = last.get(member, 0)
        if index % 2 != kind:
            index += 1
        last[member] = index
        rounds += [[] for _ in range(index + 1 - len(rounds))]
        rounds[index].append(step)
    return rounds
