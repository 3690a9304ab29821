"""Provider delivery webhooks (``POST /v1/webhooks/{channel}/{provider}``): the signature,
the body, and recording each callback through :func:`record_delivery_callback`.

A provider signs each request with its secret (``LOYALTY_WEBHOOK_SECRETS``)::

    X-Loyalty-Timestamp: 1775361600                  (Unix seconds, when it was signed)
    X-Loyalty-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>." + raw body)>

A request signed more than :data:`TOLERANCE` away from the engine clock is refused, so a
captured request cannot be played again later. ``X-Loyalty-Signature`` may carry several
``sha256=`` values separated by commas (a provider rotating its key); one match is enough.

Callback ids are unique per provider only, so each is stored as ``<channel>/<provider>:<id>``:
a redelivered callback changes nothing, and two providers' ``evt-1`` do not collide.

A webhook updates only messages sent on its channel: a callback naming a message of another
channel (an email's id posted to ``/v1/webhooks/sms/…``) is answered ``unknown_message``, as one
naming no message at all, and changes nothing: a provider cannot touch another channel's
messages, and the answer does not tell it that such a message exists.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter
from sqlalchemy import Connection

from notifications.callbacks import DeliveryCallback, record_delivery_callback
from notifications.errors import MessageNotFound

SIGNATURE_HEADER = "X-Loyalty-Signature"
TIMESTAMP_HEADER = "X-Loyalty-Timestamp"
TOLERANCE = timedelta(minutes=5)
MAX_CALLBACKS = 1000
Outcome = Literal["applied", "duplicate", "unknown_message"]


class WebhookCallback(DeliveryCallback):
    """One callback as a provider posts it (``id`` is the provider's own event id)."""

    # 150: room for the "<channel>/<provider>:" prefix in the 200 characters stored.
    id: str = Field(min_length=1, max_length=150, description="the provider's event id")


CallbackBatch = Annotated[list[WebhookCallback], Field(min_length=1, max_length=MAX_CALLBACKS)]
_ONE = TypeAdapter(WebhookCallback)
_MANY: TypeAdapter[list[WebhookCallback]] = TypeAdapter(CallbackBatch)


@dataclass(frozen=True)
class SignatureCheck:
    """Whether a request is the provider's: ``code`` and ``detail`` say why not."""

    ok: bool
    code: str = ""
    detail: str = ""


@dataclass(frozen=True)
class WebhookOutcome:
    """What one callback did: applied, a duplicate of one recorded before, or about a message
    this engine has no record of (kept out, answered so the provider stops retrying)."""

    id: str
    outcome: Outcome
    message_id: str | None


def sign(secret: bytes, *, timestamp: int, body: bytes) -> str:
    """The ``X-Loyalty-Signature`` value of ``body`` signed at ``timestamp``."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def check_signature(
    secret: bytes, *, body: bytes, signature: str | None, timestamp: str | None, now: datetime
) -> SignatureCheck:
    """Is ``body`` signed with ``secret``, at most :data:`TOLERANCE` from ``now``?"""
    if not signature or not timestamp:
        return _bad(f"send {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} (see docs/http.md)")
    seconds = timestamp.strip()
    if not seconds.isdigit() or len(seconds) > 15:
        return _bad(f"{TIMESTAMP_HEADER} must be Unix seconds, such as 1775361600")
    expected = sign(secret, timestamp=int(seconds), body=body)
    offered = [value.strip() for value in signature.split(",")]
    if not any(hmac.compare_digest(expected, value) for value in offered):
        return _bad(f"{SIGNATURE_HEADER} does not match the body and timestamp for this provider")
    age = now.timestamp() - int(seconds)
    if abs(age) > TOLERANCE.total_seconds():
        return SignatureCheck(
            False,
            "stale_timestamp",
            f"{TIMESTAMP_HEADER} {seconds} is {abs(age):.0f} s from the engine clock "
            f"({int(now.timestamp())}), more than {TOLERANCE.total_seconds():.0f} s; "
            "sign each request when sending it",
        )
    return SignatureCheck(True)


def _bad(detail: str) -> SignatureCheck:
    return SignatureCheck(False, "bad_signature", detail)


def parse_callbacks(body: bytes) -> list[WebhookCallback]:
    """One callback object or a list of 1 to :data:`MAX_CALLBACKS`; raises ``ValueError``
    (not JSON) or pydantic's ``ValidationError`` (its locations name each field)."""
    data: Any = json.loads(body)
    if isinstance(data, list):
        return _MANY.validate_python(data)
    return [_ONE.validate_python(data)]


def record_webhook(
    conn: Connection,
    callbacks: list[WebhookCallback],
    *,
    channel: str,
    provider: str,
    now: datetime,
) -> list[WebhookOutcome]:
    """Record each callback (namespaced by provider) on its message, once per id; a message of
    another channel than ``channel`` is answered as an unknown one."""
    outcomes = []
    for callback in callbacks:
        stored = DeliveryCallback.model_validate(
            callback.model_dump() | {"id": f"{channel}/{provider}:{callback.id}"}
        )
        try:
            result = record_delivery_callback(conn, stored, now=now, channel=channel)
        except MessageNotFound:  # raised before anything is written
            outcomes.append(WebhookOutcome(callback.id, "unknown_message", None))
            continue
        outcome: Outcome = "applied" if result.applied else "duplicate"
        outcomes.append(WebhookOutcome(callback.id, outcome, result.message_id))
    return outcomes
