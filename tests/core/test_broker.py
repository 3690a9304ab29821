"""The broker: events enqueued through real Redis are ingested by a worker; embedded drains."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries
from sqlalchemy import Engine, func, select

import worker
from core.broker import drain, get_broker
from core.clock import FixedClock, set_clock
from core.events.actors import ingest_event
from core.events.tables import events, orders
from core.runtime import Runtime, set_runtime
from core.settings import Settings

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def paid(n: int) -> dict[str, object]:
    return {
        "id": f"e-{n}",
        "type": "order.paid",
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "member_id": f"m-{n % 3}",
        "data": {"order_id": f"o-{n}", "total": "19.90"},
    }


@pytest.fixture
def use_settings() -> Iterator[object]:
    def install(**values: object) -> Settings:
        settings = Settings(_env_file=None, program_dir="/nonexistent", **values)  # type: ignore[call-arg]
        set_runtime(Runtime(settings=settings))
        set_clock(FixedClock(NOW))
        worker.setup(settings)
        return settings

    yield install
    worker.setup(Settings(_env_file=None, redis_url=None))  # type: ignore[call-arg]


def test_without_redis_the_broker_is_in_process(use_settings: object) -> None:
    use_settings(database_url="sqlite://")  # type: ignore[operator]

    assert isinstance(get_broker(), StubBroker)


def test_retry_policy_comes_from_settings_as_middleware(use_settings: object) -> None:
    use_settings(database_url="sqlite://", max_retries=3, max_backoff_ms=5000)  # type: ignore[operator]

    retries = next(m for m in get_broker().middleware if isinstance(m, Retries))
    assert (retries.max_retries, retries.max_backoff) == (3, 5000)


def test_events_enqueued_through_redis_are_ingested_by_a_worker_once(
    use_settings: object, pg_engine: Engine, pg_url: str, redis_url: str
) -> None:
    use_settings(database_url=pg_url, redis_url=redis_url)  # type: ignore[operator]
    broker = get_broker()
    assert isinstance(broker, RedisBroker)

    for n in range(20):
        ingest_event.send(paid(n))
    ingest_event.send(paid(0))  # delivered twice: must count once
    consumer = Worker(broker, worker_threads=2, worker_timeout=100)
    consumer.start()
    try:
        broker.join("events", timeout=30_000)
    finally:
        consumer.stop()

    with pg_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 20
        assert conn.execute(select(func.count()).select_from(orders)).scalar() == 20


def test_the_embedded_default_drains_enqueued_events_in_process(
    use_settings: object, engine: Engine, db_url: str
) -> None:
    use_settings(database_url=db_url)  # type: ignore[operator]

    for n in range(5):
        ingest_event.send(paid(n))
    drain()

    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 5
