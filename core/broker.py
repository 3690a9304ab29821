"""The message broker every actor is bound to, and the embedded in-process worker.

Packages declare actors with :func:`actor`; :func:`install_broker` binds them all to the broker
built from settings: Redis when ``LOYALTY_REDIS_URL`` is set, else dramatiq's in-process
``StubBroker``, drained by an in-process ``Worker`` (:func:`drain`). Redis is imported only by
dramatiq's Redis broker. Retry, age and time limits are middleware options, not actor code.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import dramatiq
from dramatiq import Actor, Broker, Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from core.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

# Actors are declared on this placeholder at import time, so importing a package never opens a
# connection; install_broker() moves them to the real broker.
_placeholder = StubBroker()
dramatiq.set_broker(_placeholder)
_actors: list[Actor[Any, Any]] = []
_installed: Broker = _placeholder
_in_process: Worker | None = None
_lock = threading.Lock()


def actor(**options: Any) -> Callable[[F], Actor[Any, Any]]:
    """Declare a dramatiq actor of this engine (bound to whichever broker is installed)."""

    def decorate(fn: F) -> Actor[Any, Any]:
        declared: Actor[Any, Any] = dramatiq.actor(broker=_installed, **options)(fn)
        _actors.append(declared)
        return declared

    return decorate


def middleware_for(settings: Settings) -> list[Middleware]:
    """Policy for every actor: bounded exponential retries, and age and time limits."""
    return [
        AgeLimit(max_age=settings.max_age_ms),
        TimeLimit(time_limit=settings.time_limit_ms),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
        ),
    ]


def build_broker(settings: Settings) -> Broker:
    """Redis when configured, otherwise the in-process broker of the embedded default."""
    if settings.redis_url:
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=settings.redis_url, middleware=middleware_for(settings))
    return StubBroker(middleware=middleware_for(settings))


def install_broker(broker: Broker) -> Broker:
    """Make ``broker`` the global broker and bind every declared actor to it."""
    global _installed
    with _lock:
        _stop_in_process_worker()
        dramatiq.set_broker(broker)
        _installed = broker
        for declared in _actors:
            declared.broker = broker
            broker.declare_actor(declared)
    return broker


def get_broker() -> Broker:
    return _installed


def drain(broker: Broker | None = None, *, timeout_ms: int | None = None) -> None:
    """Run every queued message, and everything it enqueues, to completion in this process.

    A message that fails every retry is an error here: ``tick`` and the demo must not hide it.
    """
    broker = broker or _installed
    _start_in_process_worker(broker)
    _join_until_quiet(broker, timeout_ms)


def _start_in_process_worker(broker: Broker) -> None:
    # One long-lived worker per installed broker: starting one per drain costs ~100 ms.
    global _in_process
    with _lock:
        if _in_process is not None and _in_process.broker is not broker:
            _stop_in_process_worker()
        if _in_process is None:
            _in_process = Worker(broker, worker_timeout=20, worker_threads=1)
            _in_process.start()
            atexit.register(_stop_in_process_worker)


def _stop_in_process_worker() -> None:
    global _in_process
    if _in_process is not None:
        _in_process.stop()
        _in_process = None


def _join_until_quiet(broker: Broker, timeout_ms: int | None) -> None:
    # A message handled on one queue may enqueue on another; join until a full pass is quiet.
    while True:
        for queue in sorted(broker.get_declared_queues()):
            if isinstance(broker, StubBroker):
                broker.join(queue, timeout=timeout_ms, fail_fast=True)
            else:
                broker.join(queue, timeout=timeout_ms)
        if _all_empty(broker):
            return


def _all_empty(broker: Broker) -> bool:
    if isinstance(broker, StubBroker):
        return all(q.unfinished_tasks == 0 for q in broker.queues.values())
    return True
