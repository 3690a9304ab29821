"""Every exception the notifications package raises, rooted in one base class.

::

    NotificationError                 base of this package
    ├── TemplateNotFound              no template (or no text for a channel) by that id
    ├── TemplateRenderError           a template failed to render (missing variable, unsafe use)
    ├── UnsubscribeTokenInvalid       an unsubscribe token is malformed or its signature is wrong
    ├── MessageNotFound               no message by the id (replay, delivery callback)
    ├── ReplayRefused                 the message is not in a state that can be sent again
    └── DeliveryError                 a provider did not take a message
        ├── TransientDeliveryError    try again later: timeouts, 429, 5xx, connection failures
        └── PermanentDeliveryError    never retry: 400, invalid address; may feed suppression

Guardrails that stop a message (no consent, quiet hours…) are decisions, not exceptions: see
:mod:`notifications.guardrails`.
"""

from __future__ import annotations


class NotificationError(Exception):
    """Raised by the notifications package; the base of its exceptions."""


class TemplateNotFound(NotificationError):
    """Raised when a message names a template, or a channel of one, that the program lacks."""

    def __init__(self, template_id: str, channel: str | None = None) -> None:
        if channel:
            message = (
                f"template {template_id!r} has no {channel} message; "
                f"add one to templates/{template_id}.yaml"
            )
        else:
            message = (
                f"no template by the id of {template_id!r} was found; "
                f"add templates/{template_id}.yaml"
            )
        super().__init__(message)
        self.template_id = template_id
        self.channel = channel


class TemplateRenderError(NotificationError):
    """Raised when a template cannot be rendered with the variables it was given."""

    def __init__(self, where: str, reason: str, *, line: int | None = None) -> None:
        at = f" (line {line} of the text)" if line else ""
        super().__init__(f"{where}: {reason}{at}")
        self.where = where
        self.reason = reason
        self.line = line


class UnsubscribeTokenInvalid(NotificationError):
    """Raised when an unsubscribe token is malformed or was not signed with this engine's key."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid unsubscribe token: {reason}; use the link from a message")


class MessageNotFound(NotificationError):
    """Raised when no message by the id (or provider message id) was recorded."""

    def __init__(self, message_id: str) -> None:
        super().__init__(
            f"no message by the id of {message_id!r} was found; "
            "list them with `loyalty-engine notifications log`"
        )
        self.message_id = message_id


class ReplayRefused(NotificationError):
    """Raised when asked to send again a message that is not dead, failed or unknown."""

    def __init__(self, message_id: str, status: str) -> None:
        super().__init__(
            f"message {message_id!r} is {status}; only dead, failed or unknown messages "
            "can be replayed"
        )
        self.message_id = message_id
        self.status = status


class DeliveryError(NotificationError):
    """Raised by a transport when its provider did not take a message."""

    def __init__(self, message: str, *, provider: str = "") -> None:
        super().__init__(f"{provider}: {message}" if provider else message)
        self.provider = provider


class TransientDeliveryError(DeliveryError):
    """Raised when a send may succeed later: timeouts, throttling (429), 5xx, lost connections."""

    def __init__(
        self, message: str, *, provider: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Raised when a send can never succeed (400, invalid address); ``suppress`` marks the
    address itself as bad, so it joins the suppression list."""

    def __init__(self, message: str, *, provider: str = "", suppress: bool = False) -> None:
        super().__init__(message, provider=provider)
        self.suppress = suppress
