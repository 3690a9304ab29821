"""What sending needs besides the database: transports, cap counter, policy, randomness.

Built once per process from the runtime's settings and program (:func:`get_dispatcher`); tests
install their own with stub transports (:func:`use_dispatcher`).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from core.settings import Settings
from notifications.caps import CapCounter, build_cap_counter
from notifications.guardrails import Policy
from notifications.settings import NotificationSettings, get_notification_settings
from notifications.transports import BaseTransport, build_transports


@dataclass
class Dispatcher:
    """The providers and rules one worker sends with."""

    transports: Mapping[str, BaseTransport]
    caps: CapCounter
    options: NotificationSettings
    policy: Policy = field(default_factory=Policy)
    email_sender: str = ""
    sms_signature: str = ""
    rng: random.Random = field(default_factory=random.Random)

    def transport(self, channel: str) -> BaseTransport:
        return self.transports[channel]

    def backoff(self, attempt: int, retry_after: float | None = None) -> timedelta:
        """Exponential with equal jitter: half of ``min * 2**(attempt-1)`` (capped at max),
        plus a random share of the other half; never sooner than the provider's Retry-After."""
        base = min(
            self.options.retry_max_backoff_s,
            self.options.retry_min_backoff_s * 2 ** max(attempt - 1, 0),
        )
        seconds = base / 2 + self.rng.uniform(0, base / 2)
        return timedelta(seconds=max(seconds, retry_after or 0.0))

    def close(self) -> None:
        for transport in self.transports.values():
            transport.close()


def build_dispatcher(
    settings: Settings, options: NotificationSettings, program: Any = None
) -> Dispatcher:
    sender = program.program_file.messaging.sender if program is not None else None
    return Dispatcher(
        transports=build_transports(settings, options),
        caps=build_cap_counter(settings.redis_url),
        options=options,
        policy=Policy.from_program(program),
        email_sender=sender.email if sender else "",
        sms_signature=sender.sms_signature if sender else "",
    )


_lock = threading.Lock()
_override: Dispatcher | None = None
_built: dict[tuple[int, int], tuple[Any, Any, Dispatcher]] = {}


def get_dispatcher(runtime: Any = None) -> Dispatcher:
    """The dispatcher of this process's runtime (one per runtime and program)."""
    if _override is not None:
        return _override
    if runtime is None:
        from core.runtime import get_runtime

        runtime = get_runtime()
    program = runtime.program_or_none()
    key = (id(runtime), id(program))
    with _lock:
        entry = _built.get(key)  # holding runtime and program keeps their ids from reuse
        if entry is None:
            for *_, stale in _built.values():
                stale.close()
            _built.clear()
            options = get_notification_settings()
            entry = (runtime, program, build_dispatcher(runtime.settings, options, program))
            _built[key] = entry
    return entry[2]


def current_options() -> NotificationSettings:
    """The notification settings sends use here (the installed dispatcher's, if any)."""
    return _override.options if _override is not None else get_notification_settings()


@contextmanager
def use_dispatcher(dispatcher: Dispatcher) -> Iterator[Dispatcher]:
    """Send with ``dispatcher`` inside the block (tests, benchmarks)."""
    global _override
    previous, _override = _override, dispatcher
    try:
        yield dispatcher
    finally:
        _override = previous
