"""Limits in the database: reading usage for eligibility, taking and giving back room atomically.

Every take is one conditional UPDATE that either finds room and takes it or changes nothing,
so concurrent checkouts can never overshoot a limit (PostgreSQL re-checks the WHERE clause of
a row another transaction just changed; SQLite runs one writer at a time). Nothing here reads
then writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from core.db import insert_ignoring_conflicts
from coupons.rules import CouponRule
from coupons.snapshots import CouponUsage
from coupons.tables import coupon_counters, coupon_member_uses

ZERO = Decimal("0.00")
# Codes per IN (...) list: well under SQLite's 32,766 bound parameters, few round trips.
CHUNK = 1000
_HUNDRED = Decimal(100)


def to_cents(amount: Decimal) -> int:
    return int(amount * _HUNDRED)


@lru_cache(maxsize=4096)  # a checkout asks for every wallet coupon's spend
def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / _HUNDRED).quantize(Decimal("0.01"))


def fetch_usage(
    conn: Connection, member_id: str, coupon_ids: Iterable[str]
) -> dict[str, CouponUsage]:
    """How much of each coupon's limits is taken, overall and by this member."""
    ids = sorted(set(coupon_ids))
    if not ids:
        return {}
    return usage_of(ids, fetch_counters(conn, ids), fetch_member_uses(conn, member_id, ids))


def fetch_counters(conn: Connection, coupon_ids: Iterable[str]) -> dict[str, Counter]:
    """Each coupon's uses and spend by all members (a coupon never used: absent)."""
    ids = sorted(set(coupon_ids))
    if not ids:
        return {}
    query = select(coupon_counters).where(coupon_counters.c.coupon_id.in_(ids))
    return {row.coupon_id: Counter(row.used, row.spent_cents) for row in conn.execute(query)}


def fetch_member_uses(
    conn: Connection, member_id: str, coupon_ids: Iterable[str]
) -> dict[str, tuple[datetime, ...]]:
    """When the member used each coupon, oldest first (a coupon never used: absent)."""
    ids = sorted(set(coupon_ids))
    if not ids:
        return {}
    uses: dict[str, list[datetime]] = defaultdict(list)
    query = select(coupon_member_uses.c.coupon_id, coupon_member_uses.c.used_at).where(
        coupon_member_uses.c.member_id == member_id,
        coupon_member_uses.c.coupon_id.in_(ids),
        coupon_member_uses.c.code.is_not(None),
    )
    for coupon_id, used_at in conn.execute(query):
        uses[coupon_id].append(used_at)
    return {coupon_id: tuple(sorted(times)) for coupon_id, times in uses.items()}


@dataclass(frozen=True)
class Counter:
    """A coupon's row of ``coupon_counters``."""

    used: int = 0
    spent_cents: int = 0


def usage_of(
    coupon_ids: Iterable[str],
    counters: Mapping[str, Counter],
    uses: Mapping[str, tuple[datetime, ...]],
) -> dict[str, CouponUsage]:
    """Each coupon's :class:`CouponUsage` from its counter and the member's uses; pure."""
    usage = {}
    for coupon_id in coupon_ids:
        counter = counters.get(coupon_id, NO_COUNTER)
        usage[coupon_id] = CouponUsage(
            used=counter.used,
            spent=from_cents(counter.spent_cents),
            member_uses=uses.get(coupon_id, ()),
        )
    return usage


NO_COUNTER = Counter()


def ensure_counters(conn: Connection, coupon_ids: Iterable[str]) -> None:
    rows = [{"coupon_id": c, "used": 0, "spent_cents": 0} for c in sorted(set(coupon_ids))]
    if rows:
        conn.execute(insert_ignoring_conflicts(conn, coupon_counters, ["coupon_id"]), rows)


def take_counter(conn: Connection, rule: CouponRule, discount: Decimal) -> bool:
    """Count one use of ``discount`` against the coupon's total and budget, if both have room."""
    cents = to_cents(discount)
    c = coupon_counters.c
    statement = update(coupon_counters).where(c.coupon_id == rule.id)
    if rule.total is not None:
        statement = statement.where(c.used < rule.total)
    if rule.budget is not None:
        statement = statement.where(c.spent_cents + cents <= to_cents(rule.budget))
    result = conn.execute(statement.values(used=c.used + 1, spent_cents=c.spent_cents + cents))
    return result.rowcount == 1


def take_member_slot(
    conn: Connection, rule: CouponRule, member_id: str, code: str, now: datetime
) -> bool:
    """Take one of the member's ``per_member`` slots: a free one, or one whose use is older
    than ``per_member_period``. No per-member limit: always True."""
    if rule.per_member is None:
        return True
    key = {"coupon_id": rule.id, "member_id": member_id}
    slots = [
        {**key, "slot": slot, "code": None, "used_at": None} for slot in range(rule.per_member)
    ]
    conn.execute(
        insert_ignoring_conflicts(conn, coupon_member_uses, ["coupon_id", "member_id", "slot"]),
        slots,
    )
    u = coupon_member_uses.c
    free: list[ColumnElement[bool]] = [u.code.is_(None)]
    if rule.per_member_period is not None:
        free.append(u.used_at <= now - rule.per_member_period)
    for slot in range(rule.per_member):
        taken = conn.execute(
            update(coupon_member_uses)
            .where(u.coupon_id == rule.id, u.member_id == member_id, u.slot == slot, or_(*free))
            .values(code=code, used_at=now)
        )
        if taken.rowcount == 1:
            return True
    return False


def free_member_slot(conn: Connection, code: str) -> None:
    """Free the member slot a code holds (undoing a use that could not be completed)."""
    conn.execute(
        update(coupon_member_uses)
        .where(coupon_member_uses.c.code == code)
        .values(code=None, used_at=None)
    )


Held = tuple[str, str, Decimal]  # (code, coupon_id, discount) of a use being given back


def give_back(conn: Connection, held: Sequence[Held]) -> None:
    """Undo uses: free the member slots the codes held, then lower the counters; coupon by
    coupon in id order, the order every claim takes its locks in, so the two never deadlock."""
    by_coupon: dict[str, list[Held]] = defaultdict(list)
    for use in held:
        by_coupon[use[1]].append(use)
    c = coupon_counters.c
    for coupon_id, uses in sorted(by_coupon.items()):
        codes = sorted(code for code, _, _ in uses)
        for start in range(0, len(codes), CHUNK):
            conn.execute(
                update(coupon_member_uses)
                .where(coupon_member_uses.c.code.in_(codes[start : start + CHUNK]))
                .values(code=None, used_at=None)
            )
        cents = sum(to_cents(discount) for _, _, discount in uses)
        conn.execute(
            update(coupon_counters)
            .where(c.coupon_id == coupon_id)
            .values(used=c.used - len(uses), spent_cents=c.spent_cents - cents)
        )
