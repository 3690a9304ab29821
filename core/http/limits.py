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


# gcra_step in Lua, on the Redis clock, taking up to ARGV[3] requests' room at once (as many
# as fit); the bucket expires once it is full again. Answers {taken, seconds to wait if none}.
_GCRA_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3] or '1')
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local room = math.floor((window - (tat - now)) / interval + 1e-9)
local taken = math.min(wanted, room)
if taken < 1 then
  return {0, tostring(tat + interval - window - now)}
end
local new_tat = tat + taken * interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000))
return {taken, '0'}
"""
# A worker takes room for this share of a minute's allowance at once (at least 1: a key of
# under 1,000 requests a minute is asked about on every request), spent within LEASE_SECONDS.
LEASE_SHARE = 1_000
LEASE_SECONDS = 1.0


class RedisRateLimiter(RateLimiter):
    """Buckets in Redis, shared by every process; if Redis fails the request goes ahead
    (the limit protects the engine, it must not take the API down with Redis).

    On the event loop a worker takes room for ``limit // LEASE_SHARE`` requests at once and
    counts them off locally for up to a second, so a busy key costs one Redis call per lease
    rather than per request. The room is taken from the shared bucket, so the limit holds;
    room a worker leaves unspent (the key went quiet) is lost: at most one lease, 0.1% of a
    minute's allowance, per worker a second (one request at a time asks for a lease)."""

    def __init__(self, url: str, limit: int, *, clock: Any = time.monotonic) -> None:
        import redis

        self.url, self.limit, self._clock = url, limit, clock
        self.lease = max(1, limit // LEASE_SHARE)
        self._client = redis.Redis.from_url(url)
        self._script = self._client.register_script(_GCRA_LUA)
        # (event loop, its script, a lock per bucket)
        self._async_state: tuple[Any, Any, dict[str, asyncio.Lock]] | None = None
        self._leases: dict[str, tuple[int, float]] = {}  # bucket → (room left, until)
        self._errors: tuple[type[Exception], ...] = (redis.exceptions.RedisError,)

    def hit(self, bucket: str) -> Verdict:
        try:
            answer = self._script(keys=[_key(bucket)], args=[self.limit, WINDOW_SECONDS, 1])
        except self._errors as exc:
            return _unchecked(exc)
        return _verdict(answer)

    async def hit_async(self, bucket: str) -> Verdict:
        """:meth:`hit` on the event loop (redis.asyncio: no thread per request), from the
        worker's lease of room while it lasts. One request at a time asks Redis for a bucket;
        the others wait for its lease (else each would take a lease, and the unspent ones
        would drain the bucket)."""
        verdict = self._from_lease(bucket)
        if verdict is not None:
            return verdict
        script, locks = self._loop_state()
        async with locks.setdefault(bucket, asyncio.Lock()):
            verdict = self._from_lease(bucket)  # the request before took a lease meanwhile
            if verdict is not None:
                return verdict
            args = [self.limit, WINDOW_SECONDS, self.lease]
            try:
                answer = await script(keys=[_key(bucket)], args=args)
            except self._errors as exc:
                return _unchecked(exc)
        taken, now = int(answer[0]), self._clock()
        if taken > 1:
            self._leases[bucket] = (taken - 1, now + LEASE_SECONDS)
            if len(self._leases) > _MAX_IN_PROCESS_BUCKETS:
                self._leases = {k: v for k, v in self._leases.items() if v[1] > now}
                for idle in [k for k, lock in locks.items() if not lock.locked()]:
                    del locks[idle]
        return _verdict(answer)

    def _from_lease(self, bucket: str) -> Verdict | None:
        left, until = self._leases.get(bucket, (0, 0.0))
        if left > 0 and self._clock() < until:
            self._leases[bucket] = (left - 1, until)
            return Verdict(True)
        return None

    def _loop_state(self) -> tuple[Any, dict[str, asyncio.Lock]]:
        """The script and the per-bucket locks of the running event loop (a client's
        connections, like a lock, belong to one loop)."""
        import redis.asyncio

        loop = asyncio.get_running_loop()
        if self._async_state is None or self._async_state[0] is not loop:
            client = redis.asyncio.Redis.from_url(self.url)
            self._async_state = (loop, client.register_script(_GCRA_LUA), {})
        return self._async_state[1], self._async_state[2]


def _key(bucket: str) -> str:
    return f"loyalty:rate:{bucket}"


def _verdict(answer: Any) -> Verdict:
    taken, wait = answer
    if int(taken):
        return Verdict(True)
    return Verdict(False, max(1, math.ceil(float(wait))))


_warned_at = [-math.inf]


def _unchecked(exc: Exception) -> Verdict:
    """A request that goes ahead unchecked, Redis having failed (warned of once a minute)."""
    if time.monotonic() - _warned_at[0] >= WINDOW_SECONDS:
        _warned_at[0] = time.monotonic()
        log.warning("rate limit not checked: Redis failed (%s); requests go ahead", exc)
    return Verdict(True)


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """Redis when configured, else in this process; none when the limit is 0."""
    if settings.api_rate_limit == 0:
        return NoRateLimit()
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, settings.api_rate_limit)
    return InProcessRateLimiter(settings.api_rate_limit)
