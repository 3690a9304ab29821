"""``render_preview``: what a member would get from a template, on each channel, without
recording or sending anything (``campaigns preview`` builds on it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from core.privacy import mask_address
from notifications.dispatcher import current_options
from notifications.errors import TemplateRenderError
from notifications.guardrails import Recipient, check_receivable
from notifications.requests import MessageRequest, render_for
from notifications.store import fetch_recipients, message_id_for
from notifications.templates import RenderedMessage, catalog_for
from notifications.tokens import load_secret


@dataclass(frozen=True)
class Preview:
    """One channel of the template for the member: rendered, or why it could not be."""

    channel: str
    receivable: bool  # consent and an address for the channel
    reason: str | None  # why not receivable
    to: str | None  # masked
    message: RenderedMessage | None
    error: str | None  # a rendering error


def render_preview(
    conn: Connection,
    *,
    member_id: str,
    template_id: str,
    variables: Mapping[str, Any],
    now: datetime,
    program: Any,
    channels: Sequence[str] | None = None,
) -> list[Preview]:
    """Render ``template_id`` for ``member_id`` on every channel it has (or those given).

    Raises LookupError when no event has named the member.
    """
    recipient = fetch_recipients(conn, [member_id]).get(member_id)
    if recipient is None:
        raise LookupError(f"no member by the id of {member_id!r} was found")
    template = catalog_for(program).template(template_id)
    configured = current_options().unsubscribe_secret
    secret = load_secret(conn, configured.get_secret_value() if configured else None)
    request = MessageRequest(
        member_id=member_id,
        channels=tuple(c for c in channels or template.channels if c in template.channels),
        template_id=template_id,
        kind="transactional",
        dedupe_key=f"preview:{template_id}:{member_id}:{now.isoformat()}",
        variables=variables,
    )
    return [_preview(program, request, recipient, c, secret) for c in request.channels]


def _preview(
    program: Any, request: MessageRequest, recipient: Recipient, channel: str, secret: bytes
) -> Preview:
    decision = check_receivable(recipient, channel)
    to = mask_address(channel, recipient.address(channel))
    message_id = message_id_for(request.dedupe_key)
    try:
        rendered = render_for(program, request, recipient, channel, secret, message_id)
    except TemplateRenderError as exc:
        return Preview(channel, decision.ok, decision.reason, to, None, str(exc))
    return Preview(channel, decision.ok, decision.reason, to, rendered, None)
