"""The one place that reads the time.

Every component asks a :class:`Clock` for ``now``. The CLI's ``--now`` installs a
:class:`FixedClock`; ``tick`` moves a :class:`SimulatedClock` forward; tests install whatever
they need. Every datetime handed out is time-zone aware (UTC).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta


class NaiveDatetimeError(ValueError):
    """Raised when a datetime without a time zone reaches the clock."""


def ensure_aware(value: datetime, *, what: str = "time") -> datetime:
    """Return ``value`` in UTC, refusing naive datetimes instead of guessing their zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{what} {value.isoformat()} has no time zone; add one, e.g. +08:00 or Z"
        )
    return value.astimezone(UTC)


class Clock:
    """Base clock: ``now()`` returns an aware UTC datetime."""

    def now(self) -> datetime:
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        time.sleep(max(seconds, 0.0))


class SystemClock(Clock):
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock(Clock):
    """A clock that stands still until moved: ``--now`` and ``tick`` use it."""

    def __init__(self, at: datetime) -> None:
        self._at = ensure_aware(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = ensure_aware(at)

    def sleep(self, seconds: float) -> None:
        self._at += timedelta(seconds=max(seconds, 0.0))


class ScaledClock(Clock):
    """Wall time running ``speed`` times faster from ``start``; lets tests watch minutes pass."""

    def __init__(self, start: datetime, *, speed: float, origin: float | None = None) -> None:
        self._start = ensure_aware(start)
        self._speed = speed
        self._origin = time.time() if origin is None else origin

    def now(self) -> datetime:
        elapsed = (time.time() - self._origin) * self._speed
        return self._start + timedelta(seconds=elapsed)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.0) / self._speed)


_current: Clock = SystemClock()


def get_clock() -> Clock:
    """The clock every component reads."""
    return _current


def set_clock(clock: Clock) -> None:
    """Install ``clock`` for this process."""
    global _current
    _current = clock


def now() -> datetime:
    """Shorthand for ``get_clock().now()``."""
    return _current.now()


@contextmanager
def using_clock(clock: Clock) -> Iterator[Clock]:
    """Install ``clock`` for the duration of a block, then restore the previous one."""
    previous = get_clock()
    set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)
