"""Per-provider send rates, shared by every worker through Redis (dramatiq's window limiter).

Each provider gets ``per_second`` sends in any one-second window across all processes. A send
that finds the window full waits for the next one, up to ``max_wait_s``; beyond that it is a
transient failure and the message is retried later like any other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from dramatiq.rate_limits import RateLimiterBackend, WindowRateLimiter

from notifications.transports.base import (
    BaseTransport,
    DeliveryError,
    OutgoingMessage,
    Receipt,
    TransientDeliveryError,
)

_POLL_S = 0.02


def rate_limiter_backend(redis_url: str | None) -> RateLimiterBackend:
    """Redis when configured (shared by all workers), else this process only."""
    if redis_url:
        from dramatiq.rate_limits.backends import RedisBackend

        return RedisBackend(url=redis_url)
    from dramatiq.rate_limits.backends import StubBackend

    return StubBackend()


class RateLimitedTransport(BaseTransport):
    """``inner``, at most ``per_second`` sends per second under the key of its name."""

    def __init__(
        self,
        inner: BaseTransport,
        *,
        backend: RateLimiterBackend,
        per_second: int,
        max_wait_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner, self.channel, self.name = inner, inner.channel, inner.name
        self.idempotent, self.local = inner.idempotent, inner.local
        key = f"loyalty-engine:notifications:rate:{inner.name}"
        self.limiter = WindowRateLimiter(backend, key, limit=per_second, window=1)
        self.max_wait_s, self._sleep, self._monotonic = max_wait_s, sleep, monotonic

    def send(self, message: OutgoingMessage) -> Receipt:
        self._acquire()
        return self.inner.send(message)

    def send_many(self, messages: Sequence[OutgoingMessage]) -> list[Receipt | DeliveryError]:
        results: list[Receipt | DeliveryError] = []
        for message in messages:
            try:
                results.append(self.send(message))
            except DeliveryError as exc:
                results.append(exc)
        return results

    def _acquire(self) -> None:
        deadline = self._monotonic() + self.max_wait_s
        while True:
            with self.limiter.acquire(raise_on_failure=False) as acquired:
                if acquired:
                    return
            if self._monotonic() >= deadline:
                raise TransientDeliveryError("send rate limit reached", provider=self.name)
            self._sleep(_POLL_S)

    def close(self) -> None:
        self.inner.close()
