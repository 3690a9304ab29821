"""The event package's exception tree (drawn in ``core/events/__init__.py``)."""

from __future__ import annotations


class EventError(Exception):
    """Raised for any failure of event intake; the base of this package's exceptions."""


class EventRejected(EventError):
    """Raised when an input event fails validation; ``reason`` says where and what."""

    def __init__(self, reason: str, *, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
