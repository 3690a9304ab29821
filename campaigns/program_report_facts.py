"""What ``program report`` is built from, fetched in three set-based reads.

The window is business days, ``since`` to ``until`` inclusive, in the program's time zone: from
midnight at the start of ``since`` to midnight at the end of ``until``. Read are the members
registered by the window's end (their ids only), the orders paid in the window summed per
member (each order's total net of its refunds, never below 0, as campaigns.goals counts
revenue), and the marketing messages sent in the window per member (notifications.reports).
Only members who bought or were messaged have an activity row: a million members who did
neither cost an id each, not a row of zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, case, func, literal, select, type_coerce

from campaigns.assignment import control_share
from core.db import Money
from core.events.tables import members, orders, refunds
from notifications.reports import count_marketing_sent

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Window:
    """Business days ``since`` to ``until``, both included, in the time zone ``zone``."""

    since: date
    until: date
    zone: str

    @classmethod
    def ending(cls, now: datetime, *, days: int, zone: str) -> Window:
        """The ``days`` business days that end with the one ``now`` falls on."""
        today = now.astimezone(ZoneInfo(zone)).date()
        return cls(today - timedelta(days=days - 1), today, zone)

    @property
    def start(self) -> datetime:
        """The first instant of the window: midnight as ``since`` begins."""
        return datetime.combine(self.since, time(0), ZoneInfo(self.zone))

    @property
    def end(self) -> datetime:
        """The first instant after the window: midnight as ``until`` ends."""
        return datetime.combine(self.until + timedelta(days=1), time(0), ZoneInfo(self.zone))


@dataclass(frozen=True)
class MemberActivity:
    """What one member got and bought in the window."""

    messages: int = 0  # marketing messages sent
    orders: int = 0  # orders paid
    revenue: Decimal = ZERO  # those orders' totals net of their refunds


@dataclass(frozen=True)
class ProgramReportFacts:
    """Everything a program report is computed from; no query runs after this."""

    window: Window
    now: datetime
    share: Decimal  # messaging.global_control
    members: tuple[str, ...]  # registered by the window's end
    activity: dict[str, MemberActivity]  # of those members, the ones who bought or got mail


def fetch_program_report_facts(
    conn: Connection, program: Any, *, since: date, until: date, now: datetime
) -> ProgramReportFacts:
    """The facts of the program over the business days ``since`` to ``until``."""
    window = Window(since, until, program.program_file.program.timezone)
    population = fetch_member_ids(conn, registered_before=window.end)
    known = set(population)
    bought = fetch_purchases(conn, start=window.start, end=window.end)
    sent = count_marketing_sent(conn, since=window.start, until=window.end)
    activity = {
        member_id: MemberActivity(sent.get(member_id, 0), *bought.get(member_id, (0, ZERO)))
        for member_id in (bought.keys() | sent.keys()) & known
    }
    return ProgramReportFacts(window, now, control_share(program), population, activity)


def fetch_member_ids(conn: Connection, *, registered_before: datetime) -> tuple[str, ...]:
    """The ids of the members registered before that instant."""
    query = select(members.c.member_id).where(
        members.c.registered_at.is_not(None), members.c.registered_at < registered_before
    )
    return tuple(conn.execute(query).scalars())


def fetch_purchases(
    conn: Connection, *, start: datetime, end: datetime
) -> dict[str, tuple[int, Decimal]]:
    """Member → (orders paid in [start, end), their totals net of their refunds)."""
    refunded = (
        select(refunds.c.order_id, func.sum(refunds.c.amount).label("refunded"))
        .group_by(refunds.c.order_id)
        .subquery()
    )
    zero = literal(ZERO, Money())
    net = orders.c.total - func.coalesce(refunded.c.refunded, zero)
    query = (
        select(
            orders.c.member_id,
            func.count(),
            type_coerce(func.sum(case((net < zero, zero), else_=net)), Money()),
        )
        .select_from(orders.outerjoin(refunded, refunded.c.order_id == orders.c.order_id))
        .where(orders.c.paid_at >= start, orders.c.paid_at < end)
        .group_by(orders.c.member_id)
    )
    return {member_id: (int(n), revenue or ZERO) for member_id, n, revenue in conn.execute(query)}
