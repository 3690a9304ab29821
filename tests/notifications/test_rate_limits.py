"""Per-provider send rates are shared by every worker through Redis."""

from __future__ import annotations

import pytest
from notification_helpers import NOW

from notifications.errors import TransientDeliveryError
from notifications.transports.base import OutgoingMessage, Receipt
from notifications.transports.limits import RateLimitedTransport, rate_limiter_backend
from notifications.transports.stub import StubTransport

WALL_CLOCK = 1_790_000_000.0


@pytest.fixture(autouse=True)
def frozen_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every send falls in the same one-second window (the limiter reads time.time())."""
    import dramatiq.rate_limits.window as window

    monkeypatch.setattr(window.time, "time", lambda: WALL_CLOCK)


def message(n: int) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=f"msg_{n}", channel="sms", to="+8613800000001", member_id="m-1",
        template="birthday", locale="en", body="Hi", sent_at=NOW,
    )  # fmt: skip


def limited(inner: StubTransport, backend: object, *, waited: list[float]) -> RateLimitedTransport:
    """The transport with a clock that moves only when it sleeps."""

    def sleep(seconds: float) -> None:
        waited.append(seconds)

    return RateLimitedTransport(
        inner, backend=backend, per_second=3, max_wait_s=1.0,  # type: ignore[arg-type]
        sleep=sleep, monotonic=lambda: sum(waited),
    )  # fmt: skip


def test_a_provider_takes_no_more_than_its_rate_and_the_excess_is_transient() -> None:
    inner = StubTransport("sms", name="sms-http")
    waited: list[float] = []
    transport = limited(inner, rate_limiter_backend(None), waited=waited)

    results = transport.send_many([message(n) for n in range(4)])

    assert [type(r) for r in results] == [Receipt] * 3 + [TransientDeliveryError]
    assert "rate limit" in str(results[3])
    assert waited  # it waited for the window before giving up
    assert len(inner.sent) == 3


def test_two_workers_share_one_providers_rate_through_redis(redis_url: str) -> None:
    first = limited(StubTransport("sms", name="sms-http"), rate_limiter_backend(redis_url),
                    waited=[])  # fmt: skip
    second = limited(StubTransport("sms", name="sms-http"), rate_limiter_backend(redis_url),
                     waited=[])  # fmt: skip

    flat = first.send_many([message(0), message(1)]) + second.send_many([message(2), message(3)])

    assert [isinstance(result, Receipt) for result in flat] == [True, True, True, False]
