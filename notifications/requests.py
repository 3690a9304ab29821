"""The service campaigns and transactional flows call: record a message, send it after commit.

``request_message`` picks the first channel the member can receive (consent and address, as
CONTRACT.md says), renders the template for them, and stores the message under its dedupe key
(``INSERT … ON CONFLICT DO NOTHING``): asking again with the same key, however often and from
however many workers, records nothing new and returns the first request's message. The send
is enqueued once the caller's transaction commits.

What callers do with a message afterwards is here too (from :mod:`notifications.states`):
``fetch_message_states`` (where each stands) and ``cancel_messages`` (withdraw those not yet
sent, e.g. when a journey exits). :mod:`notifications.preview` answers "what would the member
get, on which channel, and when" without recording anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, select

from core.privacy import mask_address
from notifications.dispatcher import current_options
from notifications.errors import TemplateRenderError
from notifications.guardrails import Recipient, choose_channel
from notifications.states import MessageState, cancel_messages, fetch_message_states
from notifications.store import fetch_recipients, insert_messages, message_id_for
from notifications.tables import messages
from notifications.template_files import TemplateFile
from notifications.templates import Audience, RenderedMessage, catalog_for, render_message
from notifications.tokens import load_secret, make_token

__all__ = [
    "KINDS",
    "Kind",
    "MessageRequest",
    "MessageRequestResult",
    "MessageState",
    "cancel_messages",
    "fetch_message_states",
    "offered_channels",
    "render_for",
    "request_message",
    "request_messages",
    "template_variables",
]

Kind = Literal["marketing", "transactional"]
KINDS = ("marketing", "transactional")


@dataclass(frozen=True)
class MessageRequest:
    """One message to send: to whom, on which channels (first receivable wins), what."""

    member_id: str
    channels: Sequence[str]
    template_id: str
    kind: Kind
    dedupe_key: str
    variables: Mapping[str, Any] = field(default_factory=dict)
    campaign_id: str | None = None


@dataclass(frozen=True)
class MessageRequestResult:
    """``created`` is False when the dedupe key was already recorded: nothing new happened,
    and ``status`` is that message's current one."""

    message_id: str
    dedupe_key: str
    status: str
    channel: str | None
    reason: str | None
    created: bool


def request_message(
    ctx_or_conn: Any,
    *,
    member_id: str,
    channels: Sequence[str],
    template_id: str,
    variables: Mapping[str, Any],
    kind: Kind,
    dedupe_key: str,
    campaign_id: str | None = None,
    now: datetime,
    program: Any = None,
) -> MessageRequestResult:
    """Record one message (queued, or suppressed with the reason) and send it after commit.

    ``ctx_or_conn`` is a ``HandlerContext`` (the send is enqueued after its commit) or a
    ``Connection`` (the message waits for the release job, or call
    ``notifications.actors.enqueue_sends`` after committing).
    """
    request = MessageRequest(
        member_id=member_id,
        channels=tuple(channels),
        template_id=template_id,
        kind=kind,
        dedupe_key=dedupe_key,
        variables=variables,
        campaign_id=campaign_id,
    )
    return request_messages(ctx_or_conn, [request], now=now, program=program)[0]


def request_messages(
    ctx_or_conn: Any, requests: Sequence[MessageRequest], *, now: datetime, program: Any = None
) -> list[MessageRequestResult]:
    """:func:`request_message` for many messages at once (one insert, one enqueue per batch)."""
    conn, after_commit, program = _unpack(ctx_or_conn, program)
    recipients = fetch_recipients(conn, {request.member_id for request in requests})
    secret = load_secret(conn, _configured_secret())
    rows: dict[str, dict[str, Any]] = {}
    for request in requests:
        if request.dedupe_key not in rows:
            recipient = recipients.get(request.member_id)
            rows[request.dedupe_key] = _prepare(request, recipient, program, secret, now)
    inserted = insert_messages(conn, list(rows.values()))
    existing = _fetch_existing(conn, [r["message_id"] for r in rows.values()], inserted)
    queued = [
        r["message_id"]
        for r in rows.values()
        if r["message_id"] in inserted and r["status"] == "queued"
    ]
    if queued and after_commit is not None:
        after_commit(lambda: _enqueue(queued))
    results, answered = [], set()
    for request in requests:
        result = _result(rows[request.dedupe_key], inserted, existing)
        if request.dedupe_key in answered:  # asked twice in one batch: the second is a repeat
            result = replace(result, created=False)
        answered.add(request.dedupe_key)
        results.append(result)
    return results


def _unpack(ctx_or_conn: Any, program: Any) -> tuple[Connection, Any, Any]:
    if isinstance(ctx_or_conn, Connection):
        conn, after_commit = ctx_or_conn, None
    else:
        conn, after_commit = ctx_or_conn.conn, ctx_or_conn.after_commit
        program = program if program is not None else ctx_or_conn.program
    if program is None:
        from core.runtime import get_runtime

        program = get_runtime().program
    return conn, after_commit, program


def _configured_secret() -> str | None:
    secret = current_options().unsubscribe_secret
    return secret.get_secret_value() if secret else None


def _enqueue(message_ids: list[str]) -> None:
    from notifications.actors import enqueue_sends

    enqueue_sends(message_ids)


def _prepare(
    request: MessageRequest,
    recipient: Recipient | None,
    program: Any,
    secret: bytes,
    now: datetime,
) -> dict[str, Any]:
    if request.kind not in KINDS:
        raise ValueError(f"kind must be marketing or transactional, got {request.kind!r}")
    message_id = message_id_for(request.dedupe_key)
    row = _base_row(request, message_id, now)
    if recipient is None:
        return row | {"status": "suppressed", "reason": "unknown_member"}
    template = catalog_for(program).template(request.template_id)
    channel, refused = choose_channel(recipient, offered_channels(request.channels, template))
    if channel is None:
        reason = next(iter(refused.values())).reason if refused else "no_channel"
        return row | {"status": "suppressed", "reason": reason}
    row |= {"channel": channel, "to_masked": mask_address(channel, recipient.address(channel))}
    try:
        rendered = render_for(program, request, recipient, channel, secret, message_id)
    except TemplateRenderError as exc:
        return row | {"status": "failed", "reason": "render_error", "error": str(exc)[:2000]}
    return row | _content(rendered)


def offered_channels(channels: Sequence[str], template: TemplateFile) -> tuple[str, ...]:
    """The channels asked for that the template has, in the order asked: the member gets the
    first of them they can receive (:func:`~notifications.guardrails.choose_channel`)."""
    return tuple(channel for channel in channels if channel in template.channels)


def _base_row(request: MessageRequest, message_id: str, now: datetime) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "dedupe_key": request.dedupe_key,
        "member_id": request.member_id,
        "campaign_id": request.campaign_id,
        "template_id": request.template_id,
        "kind": request.kind,
        "channel": None, "locale": None, "subject": None, "title": None, "body": None,
        "html": None, "segments": None, "to_masked": None, "error": None,
        "status": "queued",
        "reason": None,
        "not_before": now,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }  # fmt: skip


def _content(rendered: RenderedMessage) -> dict[str, Any]:
    return {
        "locale": rendered.locale,
        "subject": rendered.subject,
        "title": rendered.title,
        "body": rendered.body,
        "html": rendered.html,
        "segments": rendered.segments.segments if rendered.segments else None,
    }


def render_for(
    program: Any,
    request: MessageRequest,
    recipient: Recipient,
    channel: str,
    secret: bytes,
    message_id: str,
) -> RenderedMessage:
    """Render ``request``'s template on ``channel`` for the member, with their unsubscribe link."""
    token = make_token(
        secret, member_id=recipient.member_id, channel=channel, message_id=message_id
    )
    link = current_options().unsubscribe_url.format(token=token)
    info = program.program_file.program
    return render_message(
        catalog_for(program),
        template_id=request.template_id,
        channel=channel,
        variables=template_variables(request.variables, recipient, link),
        audience=Audience(recipient.locale, recipient.timezone),
        currency=info.currency,
        business_timezone=info.timezone,
        sms_signature=program.program_file.messaging.sender.sms_signature,
    )


def template_variables(
    variables: Mapping[str, Any], recipient: Recipient, unsubscribe_url: str
) -> dict[str, Any]:
    """The caller's variables, with what the projection knows of the member filled in."""
    known = {
        "id": recipient.member_id,
        "first_name": recipient.first_name,
        "locale": recipient.locale,
        "consents": dict(recipient.consents),
    }
    member = {k: v for k, v in known.items() if v is not None} | dict(variables.get("member") or {})
    return {**variables, "member": member, "unsubscribe_url": unsubscribe_url}


def _fetch_existing(conn: Connection, message_ids: list[str], inserted: set[str]) -> dict[str, Any]:
    others = [message_id for message_id in message_ids if message_id not in inserted]
    if not others:
        return {}
    stmt = select(
        messages.c.message_id, messages.c.status, messages.c.channel, messages.c.reason
    ).where(messages.c.message_id.in_(others))
    return {row.message_id: row for row in conn.execute(stmt)}


def _result(
    row: dict[str, Any], inserted: set[str], existing: dict[str, Any]
) -> MessageRequestResult:
    message_id = row["message_id"]
    source: Any = existing.get(message_id)
    if message_id in inserted or source is None:
        return MessageRequestResult(
            message_id,
            row["dedupe_key"],
            row["status"],
            row["channel"],
            row["reason"],
            message_id in inserted,
        )
    return MessageRequestResult(
        message_id, row["dedupe_key"], source.status, source.channel, source.reason, False
    )
