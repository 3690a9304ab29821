"""Stub transports for tests: they keep what they were given and fail when told to."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from notifications.transports.base import BaseTransport, OutgoingMessage, Receipt


class StubTransport(BaseTransport):
    """Records every message; raises the scripted errors first, one per send.

    ``StubTransport("sms", failures=[TransientDeliveryError("503")])`` fails the first send
    and accepts the next. With ``idempotent=True`` it also ignores a message id it has taken,
    as a provider honouring an idempotency key does.
    """

    def __init__(
        self,
        channel: str,
        *,
        name: str = "stub",
        failures: Iterable[Exception | None] = (),
        idempotent: bool = True,
        local: bool = False,
    ) -> None:
        self.channel, self.name, self.idempotent, self.local = channel, name, idempotent, local
        self.failures: list[Exception | None] = list(failures)
        self.sent: list[OutgoingMessage] = []
        self.calls = 0
        self._lock = threading.Lock()

    def fail_next(self, *errors: Exception | None) -> None:
        with self._lock:
            self.failures.extend(errors)

    def send(self, message: OutgoingMessage) -> Receipt:
        with self._lock:
            self.calls += 1
            failure = self.failures.pop(0) if self.failures else None
            if failure is not None:
                raise failure
            known = {sent.message_id for sent in self.sent}
            if not (self.idempotent and message.message_id in known):
                self.sent.append(message)
        return Receipt(self.name, f"{self.name}-{message.message_id}")


class NullTransport(BaseTransport):
    """Takes every message and keeps nothing (benchmarks measure the engine around it)."""

    idempotent = True
    local = True

    def __init__(self, channel: str, *, name: str = "null") -> None:
        self.channel, self.name = channel, name

    def send(self, message: OutgoingMessage) -> Receipt:
        return Receipt(self.name, message.message_id)
