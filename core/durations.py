"""Durations (`90s`, `15m`, `1h`, `3d`, `2w`) and times of day (`HH:MM`) as written in programs."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from core.bounds import MAX_DAYS

DURATION_PATTERN = r"^[0-9]+[smhdw]$"
TIME_OF_DAY_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
MAX_DURATION = timedelta(days=MAX_DAYS)

_UNITS: dict[str, timedelta] = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}


def parse_duration(text: str) -> timedelta:
    """Read a duration such as ``48h``; raise ValueError saying what is expected otherwise."""
    if not isinstance(text, str) or not re.fullmatch(DURATION_PATTERN, text.strip()):
        raise ValueError(f"expected a duration such as 90s, 15m, 1h, 3d or 2w, got {_shown(text)}")
    text = text.strip()
    unit = _UNITS[text[-1]]
    # Compared in digits first: int() of a 5,000-digit string is refused, and timedelta
    # overflows at 999,999,999 days.
    if len(text) > 13 or int(text[:-1]) * unit > MAX_DURATION:
        raise ValueError(
            f"expected a duration of at most {MAX_DAYS}d (100 years), got "
            + (_shown(text) if len(text) <= 20 else f"'{text[:8]}…' ({len(text) - 1} digits)")
        )
    return int(text[:-1]) * unit


def format_duration(value: timedelta) -> str:
    """Write a duration back in the largest unit that expresses it exactly (``48h`` -> ``2d``)."""
    for unit, size in _UNITS.items():
        if value % size == timedelta(0) and value >= size:
            return f"{value // size}{unit}"
    return f"{int(value.total_seconds())}s"


def parse_time_of_day(text: str) -> time:
    """Read a 24-hour ``HH:MM`` time of day; raise ValueError saying what is expected otherwise."""
    if not isinstance(text, str) or not re.fullmatch(TIME_OF_DAY_PATTERN, text.strip()):
        raise ValueError(f"expected a time of day as HH:MM such as 09:00, got {_shown(text)}")
    hours, minutes = text.strip().split(":")
    return time(int(hours), int(minutes))


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else f"{value!s} ({type(value).__name__})"


def _validate_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", "{reason}", {"reason": str(exc)}) from None


def _validate_time_of_day(value: Any) -> time:
    if isinstance(value, time):
        return value
    try:
        return parse_time_of_day(value)
    except ValueError as exc:
        raise PydanticCustomError("time_of_day", "{reason}", {"reason": str(exc)}) from None


Duration = Annotated[
    timedelta,
    PlainValidator(_validate_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": f"a number and a unit: s, m, h, d or w; at most {MAX_DAYS}d",
            "examples": ["90s", "15m", "1h", "3d", "2w"],
        }
    ),
]

TimeOfDay = Annotated[
    time,
    PlainValidator(_validate_time_of_day),
    PlainSerializer(lambda value: value.strftime("%H:%M"), return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": TIME_OF_DAY_PATTERN, "description": "24-hour HH:MM"}
    ),
]
