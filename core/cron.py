"""Standard five-field cron expressions as APScheduler triggers.

APScheduler 3 numbers weekdays from Monday = 0, while cron numbers them from Sunday = 0 (and 7),
so ``CronTrigger.from_crontab("0 10 * * 6")`` would fire on Sundays. Marketers write cron as
everyone else does; this module translates numeric weekdays to names before building a trigger.
"""

from __future__ import annotations

import re
from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMBER = re.compile(r"\d+")
_FIELDS = ("minute", "hour", "day", "month", "day_of_week")


class CronError(ValueError):
    """Raised when a cron expression is not five valid fields."""


def _weekday_names(field: str) -> str:
    def name(match: re.Match[str]) -> str:
        number = int(match.group())
        if number > 7:
            raise CronError(f"day of week {number} is out of range; use 0-7 (0 and 7 are Sunday)")
        return _DAY_NAMES[number]

    if "/" in field:
        raise CronError("steps in the day-of-week field are not supported; list the days instead")
    # Cron's "5-0" or "6-7" style ranges wrap to Sunday; APScheduler wants them written out.
    return _NUMBER.sub(name, field)


def cron_trigger(expression: str, *, timezone: str | tzinfo) -> CronTrigger:
    """``minute hour day month day_of_week`` with cron's weekday numbering."""
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_weekday_names(weekday),
            timezone=timezone,
        )
    except ValueError as exc:
        raise CronError(_which_field(dict(zip(_FIELDS, fields, strict=True)), exc)) from exc


def _which_field(fields: dict[str, str], error: ValueError) -> str:
    for name, value in fields.items():
        try:
            CronTrigger(**{name: _weekday_names(value) if name == "day_of_week" else value})
        except ValueError as exc:
            return f"{name.replace('_', ' ')} field {value!r}: {exc}"
    return str(error)
