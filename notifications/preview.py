"""What a member would get, on which channel and when, without recording or sending anything
(``campaigns preview`` builds on these).

* :func:`render_preview`: the template rendered for the member on each channel asked for;
* :func:`choose_preview_channel`: of those, the one ``request_message`` would choose (the
  first the member can receive: consent and an address, in the order asked);
* :func:`planned_send_time`: when a message asked for at a given time would go out, after
  the member's quiet hours for a marketing message ("push at 2026-11-21 09:00, after quiet
  hours"). Frequency caps are not applied: whether one is full depends on what else is sent
  to the member by then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from core.privacy import mask_address
from notifications.dispatcher import current_options
from notifications.errors import TemplateRenderError
from notifications.guardrails import Policy, Recipient, check_receivable, planned_time
from notifications.requests import KINDS, MessageRequest, offered_channels, render_for
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
    """Render ``template_id`` for ``member_id`` on every channel it has, or on those of
    ``channels`` it has, in that order (as ``request_message`` offers them).

    Raises LookupError when no event has named the member.
    """
    recipient = _fetch_recipient(conn, member_id)
    template = catalog_for(program).template(template_id)
    configured = current_options().unsubscribe_secret
    secret = load_secret(conn, configured.get_secret_value() if configured else None)
    request = MessageRequest(
        member_id=member_id,
        channels=offered_channels(template.channels if channels is None else channels, template),
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


def choose_preview_channel(previews: Sequence[Preview]) -> Preview | None:
    """The preview of the channel ``request_message`` would send on: the first the member can
    receive, in the order :func:`render_preview` was asked (None: the member can receive
    none, and each preview's ``reason`` says why)."""
    return next((preview for preview in previews if preview.receivable), None)


def planned_send_time(
    conn: Connection,
    member_id: str,
    *,
    kind: str,
    at: datetime,
    policy: Policy | None = None,
    program: Any = None,
) -> tuple[datetime, str | None]:
    """When a ``kind`` message asked for at ``at`` would go out to the member, and why then:
    ``(at, None)``, or for a marketing message inside their quiet hours (in their time zone,
    else the program's) ``(the end of them, "quiet_hours")``. Caps are not applied.

    The guardrails are ``policy``'s, else ``program``'s, else the running program's. Raises
    LookupError when no event has named the member, ValueError for a bad kind or a naive ``at``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be marketing or transactional, got {kind!r}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"at must be time-zone aware, such as {at.isoformat()}+00:00; got {at}")
    recipient = _fetch_recipient(conn, member_id)
    return planned_time(
        recipient, kind=kind, at=at, policy=policy if policy is not None else _policy_of(program)
    )


def _policy_of(program: Any) -> Policy:
    if program is None:
        from core.runtime import get_runtime

        program = get_runtime().program
    return Policy.from_program(program)


def _fetch_recipient(conn: Connection, member_id: str) -> Recipient:
    recipient = fetch_recipients(conn, [member_id]).get(member_id)
    if recipient is None:
        raise LookupError(f"no member by the id of {member_id!r} was found")
    return recipient
