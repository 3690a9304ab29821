"""Business time: days, weeks and months in the program's time zone (pure; time is passed in).

Caps per day/week/month, the birthday month and expiry dates all follow the business calendar
(``program.timezone``), never UTC and never the member's own zone. Weeks start on Monday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from core.cel.variables import now_variables as now_variables  # CEL's now is built in core

Period = Literal["day", "week", "month"]


def business_zone(program: Any) -> ZoneInfo:
    """The time zone of a loaded program (``program.program_file.program.timezone``)."""
    return ZoneInfo(program.program_file.program.timezone)


def local_date(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """Midnight at the start of ``day`` in ``zone``, as an aware UTC datetime."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def period_start(at: datetime, per: Period, zone: ZoneInfo) -> datetime:
    """The start of the business day, week (Monday) or month that contains ``at``."""
    day = local_date(at, zone)
    if per == "week":
        day -= timedelta(days=day.weekday())
    elif per == "month":
        day = day.replace(day=1)
    return start_of_day(day, zone)


def expiry_instant(available_at: datetime, days: int, zone: ZoneInfo) -> datetime:
    """Rolling expiry: a lot that became available on day D is usable to the end of D + days."""
    return start_of_day(local_date(available_at, zone) + timedelta(days=days + 1), zone)
