"""The Redis rate limit on the event loop takes room for several requests at once (a lease of
``limit // 1000``) and counts it off locally: a busy key asks Redis once per lease, and the
limit still holds across workers (real Redis)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from core.http.limits import LEASE_SECONDS, RedisRateLimiter


class Counted:
    """A limiter whose Redis calls are counted."""

    def __init__(self, limiter: RedisRateLimiter) -> None:
        self.limiter, self.calls = limiter, 0

    async def hit(self, bucket: str) -> bool:
        if self.limiter._async_state is not None:
            loop, script, locks = self.limiter._async_state
            if not isinstance(script, _Counting):
                self.limiter._async_state = (loop, _Counting(script, self), locks)
        return (await self.limiter.hit_async(bucket)).allowed


class _Counting:
    def __init__(self, script: Any, owner: Counted) -> None:
        self.script, self.owner = script, owner

    async def __call__(self, **kwargs: Any) -> Any:
        self.owner.calls += 1
        return await self.script(**kwargs)


def hits(counted: list[Counted], bucket: str, times: int) -> list[bool]:
    async def run() -> list[bool]:
        return [await counted[n % len(counted)].hit(bucket) for n in range(times)]

    return asyncio.run(run())


def test_a_small_limit_asks_redis_every_time_and_holds_exactly(redis_url: str) -> None:
    limiter = Counted(RedisRateLimiter(redis_url, 900))  # one request's room every 67 ms
    assert limiter.limiter.lease == 1

    allowed = hits([limiter], f"k-{uuid.uuid4().hex}", 100)

    assert all(allowed)
    assert limiter.calls == 99  # the first call made the script: 100 calls in all


def test_a_large_limit_asks_redis_once_per_lease(redis_url: str) -> None:
    limiter = Counted(RedisRateLimiter(redis_url, 100_000))
    assert limiter.limiter.lease == 100

    allowed = hits([limiter], f"k-{uuid.uuid4().hex}", 1_000)

    assert all(allowed)
    assert limiter.calls == 9  # leases 2 to 10: the first was taken before counting began


def test_two_workers_leasing_one_bucket_never_pass_its_limit(redis_url: str) -> None:
    workers = [Counted(RedisRateLimiter(redis_url, 5_000)) for _ in range(2)]
    assert workers[0].limiter.lease == 5

    started = time.monotonic()
    allowed = hits(workers, f"k-{uuid.uuid4().hex}", 6_000)
    refilled = (time.monotonic() - started) * 5_000 / 60  # one request's room every 12 ms

    # each spent its last lease before it was refused; no more than the bucket gave
    assert 5_000 <= sum(allowed) <= 5_000 + refilled + 1
    assert allowed[-10:].count(True) <= 1


def test_an_unspent_lease_lapses(redis_url: str) -> None:
    clock = [0.0]
    limiter = Counted(RedisRateLimiter(redis_url, 100_000, clock=lambda: clock[0]))
    bucket = f"k-{uuid.uuid4().hex}"

    async def run() -> tuple[int, int]:
        await limiter.hit(bucket)  # the script is made: calls are counted from here
        await limiter.hit(bucket)  # within the first lease
        before = limiter.calls
        clock[0] += LEASE_SECONDS + 0.01
        await limiter.hit(bucket)
        return before, limiter.calls

    before, after = asyncio.run(run())
    assert (before, after) == (0, 1)


def test_requests_at_once_share_one_lease(redis_url: str) -> None:
    """Many requests of a key arriving together ask Redis once: the rest wait for that lease
    (each taking a lease of its own drained a busy key's bucket with unspent room)."""
    limiter = Counted(RedisRateLimiter(redis_url, 100_000))
    bucket = f"k-{uuid.uuid4().hex}"

    async def run() -> tuple[list[bool], int]:
        await limiter.hit(bucket)  # the script is made: calls are counted from here
        limiter.limiter._leases.clear()  # no lease left
        found = await asyncio.gather(*(limiter.hit(bucket) for _ in range(50)))
        return list(found), limiter.calls

    allowed, calls = asyncio.run(run())
    assert all(allowed)
    assert calls == 1
