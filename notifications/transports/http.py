"""SMS and push over HTTP (httpx): a JSON POST to a configurable endpoint with an API key.

The payload shape is a function of the message (:data:`PAYLOADS`): ``sms`` for SMS gateways,
``push`` for a generic push service and ``fcm`` for an FCM-style one (``{"message": {"token",
"notification", "data"}}``). The message id goes out as the ``Idempotency-Key`` header, so a
provider that honours it never sends one message twice however often we retry.

Responses are mapped here: 2xx is a receipt (the provider's id read from ``id``,
``message_id``, ``name`` or ``sid``); 408, 429 and 5xx, timeouts and connection errors are
transient (``Retry-After`` kept); 401 and 403 are transient too (our key, not the member, is
wrong: fail over, retry, dead-letter); 400, 404, 410 and 422 are permanent and suppress the
address (an invalid number or an unregistered token); other 4xx are permanent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from notifications.privacy import scrub
from notifications.transports.base import (
    BaseTransport,
    OutgoingMessage,
    PermanentDeliveryError,
    Receipt,
    TransientDeliveryError,
)

Payload = Callable[[OutgoingMessage], dict[str, Any]]
_TRANSIENT = frozenset({401, 403, 408, 425, 429})
_BAD_ADDRESS = frozenset({400, 404, 410, 422})


def sms_payload(message: OutgoingMessage) -> dict[str, Any]:
    return _without_none(
        {
            "to": message.to,
            "text": message.body,
            "message_id": message.message_id,
            "member_id": message.member_id,
            "campaign_id": message.campaign_id,
        }
    )


def push_payload(message: OutgoingMessage) -> dict[str, Any]:
    return _without_none(
        {
            "to": message.to,
            "title": message.title,
            "body": message.body,
            "data": {"message_id": message.message_id, "template": message.template},
        }
    )


def fcm_payload(message: OutgoingMessage) -> dict[str, Any]:
    notification = _without_none({"title": message.title, "body": message.body})
    data = {"message_id": message.message_id, "template": message.template}
    return {"message": {"token": message.to, "notification": notification, "data": data}}


PAYLOADS: dict[str, Payload] = {"sms": sms_payload, "push": push_payload, "fcm": fcm_payload}


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class HttpTransport(BaseTransport):
    """POSTs each message as JSON; keeps one pooled client."""

    idempotent = True

    def __init__(
        self,
        *,
        channel: str,
        endpoint: str,
        api_key: str | None,
        payload: Payload,
        name: str,
        auth_header: str = "Authorization",
        auth_scheme: str = "Bearer",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.channel, self.endpoint, self.payload, self.name = channel, endpoint, payload, name
        headers = {"User-Agent": "loyalty-engine"}
        if api_key:
            headers[auth_header] = f"{auth_scheme} {api_key}".strip()
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def send(self, message: OutgoingMessage) -> Receipt:
        try:
            response = self._client.post(
                self.endpoint,
                json=self.payload(message),
                headers={"Idempotency-Key": message.message_id},
            )
        except httpx.TimeoutException as exc:
            raise TransientDeliveryError(f"timed out: {exc}", provider=self.name) from exc
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(
                f"{type(exc).__name__}: {exc}", provider=self.name
            ) from exc
        return self._receipt(response)

    def _receipt(self, response: httpx.Response) -> Receipt:
        status = response.status_code
        if 200 <= status < 300:
            return Receipt(self.name, _provider_id(response))
        reason = f"HTTP {status}: {scrub(response.text[:200])}"
        if status in _TRANSIENT or status >= 500:
            retry_after = _retry_after(response)
            raise TransientDeliveryError(reason, provider=self.name, retry_after=retry_after)
        raise PermanentDeliveryError(reason, provider=self.name, suppress=status in _BAD_ADDRESS)

    def close(self) -> None:
        self._client.close()


def _provider_id(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("id", "message_id", "name", "sid"):
            if body.get(key):
                return str(body[key])
    return response.headers.get("X-Message-Id")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
