"""Signed unsubscribe tokens: ``u1.<payload>.<signature>``, both base64url without padding.

The payload is ``member_id``, ``channel`` and ``message_id`` joined by U+001F; the signature is
HMAC-SHA256 of ``u1.<payload>`` under the unsubscribe secret (``LOYALTY_UNSUBSCRIBE_SECRET``, or
a random key generated once and kept in the database). Tokens do not expire: an unsubscribe link
must keep working for as long as the message may be read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from core.state import get_value, set_value
from notifications.errors import UnsubscribeTokenInvalid
from notifications.guardrails import CHANNELS

VERSION = "u1"
SECRET_KEY = "notifications.unsubscribe_secret"
_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class UnsubscribeRequest:
    """What a valid token asks: stop ``channel`` for ``member_id`` (from ``message_id``)."""

    member_id: str
    channel: str
    message_id: str | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, signed: str) -> str:
    return _b64(hmac.new(secret, signed.encode(), hashlib.sha256).digest())


def make_token(secret: bytes, *, member_id: str, channel: str, message_id: str = "") -> str:
    payload = _b64(_SEPARATOR.join((member_id, channel, message_id)).encode())
    signed = f"{VERSION}.{payload}"
    return f"{signed}.{_signature(secret, signed)}"


def read_token(secret: bytes, token: str) -> UnsubscribeRequest:
    """The request a token carries; raises UnsubscribeTokenInvalid if it was not ours."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise UnsubscribeTokenInvalid("expected u1.<payload>.<signature>")
    signed = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_signature(secret, signed), parts[2]):
        raise UnsubscribeTokenInvalid("the signature does not match")
    try:
        fields = _unb64(parts[1]).decode().split(_SEPARATOR)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise UnsubscribeTokenInvalid("the payload is not readable") from None
    if len(fields) != 3 or fields[1] not in CHANNELS or not fields[0]:
        raise UnsubscribeTokenInvalid("the payload does not name a member and a channel")
    return UnsubscribeRequest(fields[0], fields[1], fields[2] or None)


def load_secret(conn: Connection, configured: str | None) -> bytes:
    """The configured secret, else the one this database generated on first use."""
    if configured:
        return configured.encode()
    stored = get_value(conn, SECRET_KEY)
    if stored is None:
        try:
            with conn.begin_nested():
                set_value(conn, SECRET_KEY, secrets.token_urlsafe(32))
        except IntegrityError:  # another worker stored one first: use theirs
            pass
        stored = get_value(conn, SECRET_KEY)
    assert stored is not None
    return stored.encode()
