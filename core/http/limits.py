"""Per-key rate limits of the HTTP API: ``LOYALTY_API_RATE_LIMIT`` requests a minute per key.

The limit is a GCRA (generic cell rate algorithm: a token bucket kept as one timestamp): a key
may send the whole minute's allowance at once, then one request every ``60 / limit`` seconds.
A refused request learns exactly when the next one goes through (``Retry-After``).

:class:`RateLimiter` is the base; :class:`InProcessRateLimiter` serves the embedded default (one
process), :class:`RedisRateLimiter` shares the buckets among every worker of every machine
(the Redis clock decides, so machines' clocks need not agree). Redis is imported only there.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from core.settings import Settings

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60.0
_MAX_IN_PROCESS_BUCKETS = 10_000  # dropped when full of buckets that are back to a full bucket


@dataclass(frozen=True)
class Verdict:
    """Whether a request may go ahead; if not, how many seconds until one may."""

    allowed: bool
    retry_after: int = 0


@dataclass(frozen=True)
class Step:
    """One GCRA step: the verdict and the bucket's new theoretical arrival time."""

    verdict: Verdict
    tat: float


def gcra_step(tat: float | None, *, now: float, limit: int) -> Step:
    """Count a request at ``now`` against a bucket whose theoretical arrival time is ``tat``."""
    interval = WINDOW_SECONDS / limit
    start = max(tat if tat is not None else now, now)
    new_tat = start + interval
    if new_tat - now > WINDOW_SECONDS:
        wait = new_tat - WINDOW_SECONDS - now
        return Step(Verdict(False, max(1, math.ceil(wait))), start)
    return Step(Verdict(True), new_tat)


class RateLimiter:
    """Counts each request of a bucket (an API key) and says whether it may go ahead."""

    def hit(self, bucket: str) -> Verdict:
        raise NotImplementedError

    async def hit_async(self, bucket: str) -> Verdict:
        """:meth:`hit` for the event loop (this base: ``hit`` does no I/O)."""
        return self.hit(bucket)


class NoRateLimit(RateLimiter):
    """``LOYALTY_API_RATE_LIMIT=0``: every request goes ahead."""

    def hit(self, bucket: str) -> Verdict:
        return Verdict(True)


class InProcessRateLimiter(RateLimiter):
    """Buckets in this process's memory (the embedded default runs one process)."""

    def __init__(self, limit: int, *, clock: Any = time.monotonic) -> None:
        self.limit, self._clock = limit, clock
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()

    def hit(self, bucket: str) -> Verdict:
        now = self._clock()
        with self._lock:
            step = gcra_step(self._tats.get(bucket), now=now, limit=self.limit)
            self._tats[bucket] = step.tat
            if len(self._tats) > _MAX_IN_PROCESS_BUCKETS:
                self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        return step.verdict


# gcra_step in Lua, on the Redis clock; the bucket expires once it is full again.
_GCRA_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > window then
  return {0, tostring(new_tat - window - now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000))
return {1, '0'}
"""


class RedisRateLimiter(RateLimiter):
    """Buckets in Redis, shared by every process; if Redis fails the request goes ahead
    (the limit protects the engine, it must not take the API down with Redis)."""

    def __init__(self, url: str, limit: int) -> None:
        import redis
        import redis.asyncio

        self.url, self.limit = url, limit
        self._client = redis.Redis.from_url(url)
        self._script = self._client.register_script(_GCRA_LUA)
        self._async_script: tuple[Any, Any] | None = None  # (event loop, its script)
        self._errors: tuple[type[Exception], ...] = (redis.exceptions.RedisError,)

    def hit(self, bucket: str) -> Verdict:
        try:
            answer = self._script(keys=[_key(bucket)], args=[self.limit, WINDOW_SECONDS])
        except self._errors as exc:
            return _unchecked(exc)
        return _verdict(answer)

    async def hit_async(self, bucket: str) -> Verdict:
        """:meth:`hit` on the event loop (redis.asyncio: no thread per request)."""
        import redis.asyncio

        loop = asyncio.get_running_loop()
        if self._async_script is None or self._async_script[0] is not loop:
            client = redis.asyncio.Redis.from_url(self.url)  # its connections are this loop's
            self._async_script = (loop, client.register_script(_GCRA_LUA))
        script = self._async_script[1]
        try:
            answer = await script(keys=[_key(bucket)], args=[self.limit, WINDOW_SECONDS])
        except self._errors as exc:
            return _unchecked(exc)
        return _verdict(answer)


def _key(bucket: str) -> str:
    return f"loyalty:rate:{bucket}"


def _verdict(answer: Any) -> Verdict:
    allowed, wait = answer
    if int(allowed):
        return Verdict(True)
    return Verdict(False, max(1, math.ceil(float(wait))))


def _unchecked(exc: Exception) -> Verdict:
    log.warning("rate limit not checked: Redis failed (%s)", exc)
    return Verdict(True)


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """Redis when configured, else in this process; none when the limit is 0."""
    if settings.api_rate_limit == 0:
        return NoRateLimit()
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, settings.api_rate_limit)
    return InProcessRateLimiter(settings.api_rate_limit)
