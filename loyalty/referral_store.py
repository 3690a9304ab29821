"""Referral facts in the database: recording registrations, qualifying first orders, settling.

Every outcome is a row in ``referrals`` (pending, settled, or rejected with its reason).
Settling emits ``referral.qualified`` (data: referrer_member_id, referee_member_id, order_id,
referral_code) for campaigns, whose steps grant the rewards (``loyalty.points.award_points``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update

from core.db import in_values, insert_ignoring_conflicts
from core.events.handlers import HandlerContext
from core.events.internal import internal_event
from core.events.tables import members, orders, refunds
from core.events.types import Event, MemberProfile
from loyalty.calendar import business_zone, period_start
from loyalty.ledger import lock_accounts
from loyalty.referral_codes import assign_codes, resolve_codes
from loyalty.referrals import Contact, FirstOrder, Outcome, ReferralFacts, assess, settle
from loyalty.tables import referrals


def record_registrations(
    conn: Connection, events: Sequence[Event], *, now: datetime, program: Any, rng: random.Random
) -> None:
    """Give each registered member a referral code and start the referrals they came by."""
    profiles = [(e, e.data) for e in events if isinstance(e.data, MemberProfile)]
    assign_codes(conn, {e.member_id: p.referral_code for e, p in profiles}, now=now, rng=rng)
    rows = [
        {
            "referee_id": e.member_id,
            "code": p.referred_by.strip(),
            "status": "pending",
            "registered_at": e.occurred_at,
            "updated_at": now,
        }
        for e, p in profiles
        if p.referred_by and p.referred_by.strip()
    ]
    if rows:
        conn.execute(insert_ignoring_conflicts(conn, referrals, ["referee_id"]), rows)
        referees = [str(row["referee_id"]) for row in rows]
        evaluate_referrals(conn, referees, now=now, program=program)


def evaluate_referrals(
    conn: Connection, referee_ids: Iterable[str], *, now: datetime, program: Any
) -> None:
    """Decide what can be decided for pending referrals still waiting for a first order."""
    rules = program.program_file.referral
    ids = sorted(set(referee_ids))
    if not rules or not ids:
        return
    query = select(referrals).where(
        in_values(conn, referrals.c.referee_id, ids),
        referrals.c.status == "pending",
        referrals.c.order_id.is_(None),
    )
    rows = list(conn.execute(query))
    facts = fetch_facts(conn, rows)
    _write(
        conn,
        [(row, facts[row.referee_id], assess(facts[row.referee_id], rules)) for row in rows],
        now=now,
    )


def fetch_facts(conn: Connection, rows: Sequence[Any]) -> dict[str, ReferralFacts]:
    """The facts behind each referral row, fetched for all of them at once."""
    if not rows:
        return {}
    referrers = resolve_codes(conn, [row.code for row in rows])
    ids = {row.referee_id for row in rows} | set(referrers.values())
    contacts = {
        r.member_id: Contact(r.member_id, r.phone, r.email)
        for r in conn.execute(
            select(members.c.member_id, members.c.phone, members.c.email).where(
                members.c.member_id.in_(sorted(ids))
            )
        )
    }
    firsts = _first_orders(conn, [row.referee_id for row in rows])
    return {
        row.referee_id: ReferralFacts(
            referee=contacts.get(row.referee_id, Contact(row.referee_id)),
            referrer=contacts.get(referrers[row.code], Contact(referrers[row.code]))
            if row.code in referrers
            else None,
            code=row.code,
            registered_at=row.registered_at,
            first_order=firsts.get(row.referee_id),
        )
        for row in rows
    }


def _first_orders(conn: Connection, member_ids: Sequence[str]) -> dict[str, FirstOrder]:
    firsts: dict[str, FirstOrder] = {}
    query = (
        select(orders.c.member_id, orders.c.order_id, orders.c.total, orders.c.paid_at)
        .where(orders.c.member_id.in_(sorted(set(member_ids))))
        .order_by(orders.c.paid_at.desc(), orders.c.order_id.desc())
    )
    for row in conn.execute(query):
        firsts[row.member_id] = FirstOrder(row.order_id, row.total, row.paid_at)
    if not firsts:
        return firsts
    refunded = dict(
        conn.execute(
            select(refunds.c.order_id, func.sum(refunds.c.amount))
            .where(refunds.c.order_id.in_([o.order_id for o in firsts.values()]))
            .group_by(refunds.c.order_id)
        ).all()
    )
    return {
        m: FirstOrder(o.order_id, o.total, o.paid_at, Decimal(refunded.get(o.order_id, 0)))
        for m, o in firsts.items()
    }


def _write(
    conn: Connection, decided: Sequence[tuple[Any, ReferralFacts, Outcome]], *, now: datetime
) -> None:
    changes = [
        {
            "r_id": row.referee_id,
            "referrer": facts.referrer.member_id if facts.referrer else None,
            "status": outcome.status,
            "reason": outcome.reason,
            "order_id": order.order_id if order else None,
            "order_total": order.total if order else None,
            "paid_at": order.paid_at if order else None,
            "settle_at": outcome.settle_at,
            "decided_at": now if outcome.status != "pending" else None,
            "now": now,
        }
        for row, facts, outcome in decided
        for order in [facts.first_order]
    ]
    if not changes:
        return
    conn.execute(
        update(referrals)
        .where(referrals.c.referee_id == bindparam("r_id"))
        .values(
            referrer_id=bindparam("referrer"),
            status=bindparam("status"),
            reason=bindparam("reason"),
            order_id=bindparam("order_id"),
            order_total=bindparam("order_total"),
            order_paid_at=bindparam("paid_at"),
            settle_at=bindparam("settle_at"),
            decided_at=bindparam("decided_at"),
            updated_at=bindparam("now"),
        ),
        changes,
    )


@dataclass(frozen=True)
class SettleReport:
    settled: int = 0
    rejected: int = 0


def settle_referrals(ctx: HandlerContext, *, as_of: datetime, program: Any) -> SettleReport:
    """Settle or reject every pending referral due by ``as_of`` (one transaction: ``ctx``)."""
    rules = program.program_file.referral
    if rules is None:
        return SettleReport()
    rows = _due(ctx.conn, as_of=as_of, rules=rules)
    facts = fetch_facts(ctx.conn, rows)
    referrers = sorted({f.referrer.member_id for f in facts.values() if f.referrer})
    lock_accounts(ctx.conn, referrers, now=ctx.now)  # the monthly cap is counted under the lock
    month = period_start(as_of, "month", business_zone(program))
    counts = _settled_since(ctx.conn, referrers, month)
    decided = []
    for row in rows:
        fact = facts[row.referee_id]
        referrer = fact.referrer.member_id if fact.referrer else ""
        fact = replace(fact, settled_this_month=counts.get(referrer, 0))
        outcome = settle(fact, rules, now=as_of)
        counts[referrer] = counts.get(referrer, 0) + (outcome.status == "settled")
        decided.append((row, fact, outcome))
    _write(ctx.conn, decided, now=as_of)
    ctx.emit([_qualified(row, fact, as_of) for row, fact, o in decided if o.status == "settled"])
    return SettleReport(
        settled=sum(o.status == "settled" for _, _, o in decided),
        rejected=sum(o.status == "rejected" for _, _, o in decided),
    )


def _due(conn: Connection, *, as_of: datetime, rules: Any) -> list[Any]:
    """Pending referrals past their settle time, or with no order past the deadline."""
    late = as_of - timedelta(days=rules.within_days)
    query = (
        select(referrals)
        .where(
            referrals.c.status == "pending",
            or_(
                referrals.c.settle_at <= as_of,
                and_(referrals.c.order_id.is_(None), referrals.c.registered_at < late),
            ),
        )
        .order_by(referrals.c.settle_at, referrals.c.referee_id)
    )
    return list(conn.execute(query))


def _settled_since(
    conn: Connection, referrer_ids: Sequence[str], since: datetime
) -> dict[str, int]:
    if not referrer_ids:
        return {}
    query = (
        select(referrals.c.referrer_id, func.count())
        .where(
            referrals.c.referrer_id.in_(list(referrer_ids)),
            referrals.c.status == "settled",
            referrals.c.decided_at >= since,
        )
        .group_by(referrals.c.referrer_id)
    )
    return dict(conn.execute(query).all())  # type: ignore[arg-type]


def _qualified(row: Any, facts: ReferralFacts, at: datetime) -> Event:
    assert facts.referrer is not None and facts.first_order is not None
    return internal_event(
        event_id=f"referral.qualified:{row.referee_id}",
        type="referral.qualified",
        member_id=facts.referrer.member_id,
        occurred_at=at,
        data={
            "referrer_member_id": facts.referrer.member_id,
            "referee_member_id": row.referee_id,
            "order_id": facts.first_order.order_id,
            "referral_code": row.code,
        },
    )


def fetch_referrals(conn: Connection, member_id: str) -> dict[str, Any]:
    """The member's referral as referee (if any) and the referrals they made."""
    mine = conn.execute(select(referrals).where(referrals.c.referee_id == member_id)).first()
    made = conn.execute(
        select(referrals)
        .where(referrals.c.referrer_id == member_id)
        .order_by(referrals.c.registered_at)
    ).all()
    return {
        "referred_by": _view(mine) if mine else None,
        "referred": [_view(row) for row in made],
    }


def _view(row: Any) -> dict[str, Any]:
    return {
        "referee": row.referee_id,
        "referrer": row.referrer_id,
        "code": row.code,
        "status": row.status,
        "reason": row.reason,
        "order_id": row.order_id,
        "settle_at": row.settle_at,
        "decided_at": row.decided_at,
    }
