"""The one interface every provider sits behind: :class:`BaseTransport`, one per channel.

A transport takes an :class:`OutgoingMessage` and returns a :class:`Receipt`, or raises
:class:`TransientDeliveryError` (try again later) or :class:`PermanentDeliveryError` (never
retry; ``suppress`` when the address itself is bad). Vendor exceptions (smtplib, httpx, OS
errors) are mapped to those two at the edge, in each transport, and never escape it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from notifications.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

__all__ = [
    "BaseTransport",
    "DeliveryError",
    "OutgoingMessage",
    "PermanentDeliveryError",
    "Receipt",
    "TransientDeliveryError",
]


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered message with its real address, as handed to a provider."""

    message_id: str
    channel: str
    to: str
    member_id: str
    template: str
    locale: str | None
    body: str
    sent_at: datetime
    campaign_id: str | None = None
    subject: str | None = None
    title: str | None = None
    html: str | None = None
    sender: str | None = None
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None


@dataclass(frozen=True)
class Receipt:
    """What a provider said when it took a message."""

    provider: str
    provider_message_id: str | None = None


class BaseTransport:
    """Sends one channel's messages through one provider.

    ``idempotent`` is True when the provider de-duplicates on the message id we pass (an
    ``Idempotency-Key`` header, the outbox's message id), so a send that may or may not have
    happened can safely be made again. ``local`` transports reach no network.
    """

    channel: str = ""
    name: str = "transport"
    idempotent: bool = False
    # True when a send needs no network (a local file): it may run inside the transaction that
    # records it. Only meaningful with ``idempotent`` (see notifications.dispatch).
    local: bool = False

    def send(self, message: OutgoingMessage) -> Receipt:
        raise NotImplementedError

    def send_many(self, messages: Sequence[OutgoingMessage]) -> list[Receipt | DeliveryError]:
        """Send each message; a failure is returned in its place, not raised."""
        results: list[Receipt | DeliveryError] = []
        for message in messages:
            try:
                results.append(self.send(message))
            except DeliveryError as exc:
                results.append(exc)
        return results

    def close(self) -> None:
        """Release connections (a no-op for transports that hold none)."""
