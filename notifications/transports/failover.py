"""A primary provider with a secondary that takes over when the primary fails transiently.

Only transient failures (timeouts, 5xx, refused connections: an outage) move a message to the
secondary; a permanent one (an invalid address) would fail there too, so it stands.
"""

from __future__ import annotations

from collections.abc import Sequence

from notifications.transports.base import (
    BaseTransport,
    DeliveryError,
    OutgoingMessage,
    Receipt,
    TransientDeliveryError,
)


class FailoverTransport(BaseTransport):
    """Tries ``primary``; messages it fails transiently go to ``secondary``."""

    def __init__(self, primary: BaseTransport, secondary: BaseTransport) -> None:
        self.primary, self.secondary = primary, secondary
        self.channel = primary.channel
        self.name = f"{primary.name}|{secondary.name}"
        self.idempotent = primary.idempotent and secondary.idempotent
        self.local = primary.local and secondary.local

    def send(self, message: OutgoingMessage) -> Receipt:
        try:
            return self.primary.send(message)
        except TransientDeliveryError as first:
            try:
                return self.secondary.send(message)
            except TransientDeliveryError as second:
                raise TransientDeliveryError(
                    f"{first}; then {second}", retry_after=second.retry_after
                ) from second

    def send_many(self, messages: Sequence[OutgoingMessage]) -> list[Receipt | DeliveryError]:
        results = self.primary.send_many(messages)
        retry = [
            i for i, result in enumerate(results) if isinstance(result, TransientDeliveryError)
        ]
        if retry:
            second = self.secondary.send_many([messages[i] for i in retry])
            for index, result in zip(retry, second, strict=True):
                results[index] = result
        return results

    def close(self) -> None:
        self.primary.close()
        self.secondary.close()
