"""Frequency-cap counters: marketing messages per member per day and per week, counted
atomically across all workers.

A message counts once, when it is handed to a provider (the claim that moves it to
``sending``), whatever the provider then says; retries of the same message do not count again,
nor does a replay (:func:`notifications.screening.counts_against_caps`).
Periods are the member's local day and ISO week (:func:`notifications.guardrails.cap_periods`).

* :class:`RedisCapCounter` (when ``LOYALTY_REDIS_URL`` is set): one Lua script checks every
  period and increments them all, or none, in one atomic step; keys expire after 8 days.
* :class:`DatabaseCapCounter`: conditional ``UPDATE … SET count = count + 1 WHERE count <
  limit`` per period inside the claiming transaction (row locks on PostgreSQL, the write lock on
  SQLite serialise racing workers); a later period that is full undoes the earlier increments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, and_, update

from core.db import insert_ignoring_conflicts
from notifications.guardrails import Period
from notifications.tables import cap_counters

_TTL_S = 8 * 24 * 3600
_RESERVE = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i]) then return i end
end
for i, key in ipairs(KEYS) do
  redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[#KEYS + 1])
end
return 0
"""


class CapCounter:
    """Counts marketing sends per member and period."""

    def reserve(
        self,
        conn: Connection,
        *,
        member_id: str,
        periods: Mapping[Period, str],
        limits: Mapping[Period, int],
    ) -> Period | None:
        """Count one send in every limited period, or none: the first full period, else None."""
        raise NotImplementedError


class DatabaseCapCounter(CapCounter):
    def reserve(
        self,
        conn: Connection,
        *,
        member_id: str,
        periods: Mapping[Period, str],
        limits: Mapping[Period, int],
    ) -> Period | None:
        keys = {period: periods[period] for period in limits}
        if not keys:
            return None
        rows = [{"member_id": member_id, "period": key, "count": 0} for key in keys.values()]
        conn.execute(insert_ignoring_conflicts(conn, cap_counters, ["member_id", "period"]), rows)
        counted: list[str] = []
        for period, key in keys.items():
            if not self._increment(conn, member_id, key, below=limits[period]):
                for done in counted:
                    self._increment(conn, member_id, done, by=-1)
                return period
            counted.append(key)
        return None

    def _increment(
        self, conn: Connection, member_id: str, key: str, *, by: int = 1, below: int | None = None
    ) -> bool:
        where = and_(cap_counters.c.member_id == member_id, cap_counters.c.period == key)
        if below is not None:
            where = and_(where, cap_counters.c.count < below)
        stmt = update(cap_counters).where(where).values(count=cap_counters.c.count + by)
        return conn.execute(stmt).rowcount == 1


class RedisCapCounter(CapCounter):
    def __init__(self, url: str, *, prefix: str = "loyalty-engine:notifications:cap") -> None:
        import redis

        self.client: Any = redis.Redis.from_url(url)
        self.prefix = prefix
        self._script = self.client.register_script(_RESERVE)

    def reserve(
        self,
        conn: Connection,
        *,
        member_id: str,
        periods: Mapping[Period, str],
        limits: Mapping[Period, int],
    ) -> Period | None:
        order: list[Period] = [period for period in ("day", "week") if period in limits]
        if not order:
            return None
        keys = [f"{self.prefix}:{member_id}:{periods[period]}" for period in order]
        full = int(self._script(keys=keys, args=[*(limits[p] for p in order), _TTL_S]))
        return order[full - 1] if full else None


def build_cap_counter(redis_url: str | None) -> CapCounter:
    return RedisCapCounter(redis_url) if redis_url else DatabaseCapCounter()
