"""Unsubscribe links and provider delivery webhooks over HTTP (mounted under ``/v1``).

Neither takes an API key: an unsubscribe link carries its signed token
(:mod:`notifications.tokens`), and a provider signs each webhook with its secret
(:mod:`notifications.webhooks`). Both run the services the CLI and actors run:
:func:`notifications.records.apply_unsubscribe` and :func:`record_delivery_callback`.

The unsubscribe pages are HTML in the member's language (zh-CN or en); a client that asks for
JSON (``Accept: application/json``) gets JSON and problem+json instead.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field, ValidationError

from core.http.deps import runtime_of
from core.http.negotiation import ranked
from core.http.problem_docs import problem_responses
from core.http.problems import Problem, field_path
from core.program.loader import ProgramError
from core.runtime import Runtime
from notifications.dispatcher import current_options
from notifications.errors import UnsubscribeTokenInvalid
from notifications.guardrails import Recipient
from notifications.records import apply_unsubscribe
from notifications.store import fetch_recipients
from notifications.tokens import UnsubscribeRequest, load_secret, read_token
from notifications.unsubscribe_page import (
    CONTENT_SECURITY_POLICY,
    PageKind,
    page_locale,
    render_page,
)
from notifications.webhooks import (
    MAX_CALLBACKS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookCallback,
    check_signature,
    parse_callbacks,
    record_webhook,
)

router = APIRouter()
Served = Annotated[Runtime, Depends(runtime_of)]
Accept = Annotated[str | None, Header(description="application/json for JSON, else HTML.")]
AcceptLanguage = Annotated[
    str | None, Header(description="The page's language when the member's is not known.")
]
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the address
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}
_INVALID = Problem(
    400,
    "invalid_unsubscribe_token",
    "Invalid unsubscribe link",
    "the token is malformed or its signature does not match; use the whole link from the message",
)
_UNKNOWN = Problem(
    404,
    "member_not_found",
    "No such member",
    "the engine no longer knows this link's member; nothing is sent to them",
)
_ONE_CLICK = {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}}
_ONE_CLICK_BODY = {
    "required": False,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": _ONE_CLICK}
        }
    },
}
_STATUS = {"confirm": 200, "done": 200, "already": 200, "invalid": 400, "unknown": 404}


class UnsubscribeState(BaseModel):
    """Where a member stands on the link's channel."""

    channel: Literal["email", "sms", "push"]
    unsubscribed: bool = Field(description="The member gets nothing more on the channel.")
    changed: bool = Field(description="This request stopped the channel (false: it already was).")


class WebhookResult(BaseModel):
    id: str = Field(description="The provider's callback id, as sent.")
    outcome: Literal["applied", "duplicate", "unknown_message"]
    message_id: str | None = None


class WebhookReport(BaseModel):
    results: list[WebhookResult]


def _page_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    html = {"text/html": {"schema": {"type": "string"}}}
    documented = problem_responses(
        *statuses,
        d400="The link was changed or cut short.",
        d404="The engine no longer knows the link's member.",
    )
    for answer in documented.values():
        answer["content"] |= html
    invalid = problem_responses(422)  # problem+json only, as every validation error
    return {200: {"model": UnsubscribeState, "content": html}, **documented, **invalid}


@router.get(
    "/unsubscribe/{token}",
    tags=["unsubscribe"],
    responses=_page_responses(400, 404),
    summary="The unsubscribe page of a link in a message (changes nothing)",
)
def unsubscribe_page(
    token: str,
    runtime: Served,
    accept: Accept = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    """Asks the member to confirm, in their language, with a button that POSTs back here.
    Link checkers and mail scanners open links: a GET never unsubscribes."""
    with runtime.engine.begin() as conn:
        asked, recipient = _look_up(conn, token)
    if asked is None or recipient is None:
        return _refusal(asked, runtime, accept=accept, accept_language=accept_language)
    stopped = asked.channel in recipient.unsubscribed
    state = _state(asked, unsubscribed=stopped, changed=False)
    kind: PageKind = "already" if stopped else "confirm"
    return _answer(kind, state, runtime, recipient, accept=accept)


@router.post(
    "/unsubscribe/{token}",
    tags=["unsubscribe"],
    responses=_page_responses(400, 404),
    openapi_extra={"requestBody": _ONE_CLICK_BODY},
    summary="Unsubscribe: the page's button and RFC 8058 one-click (idempotent)",
)
def unsubscribe(
    token: str,
    runtime: Served,
    accept: Accept = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    """Stops the link's channel for its member. Mail clients send ``List-Unsubscribe=One-Click``
    (RFC 8058); the body is not needed, the signed token is the authority. Again: no change."""
    secret = _configured_secret()
    with runtime.engine.begin() as conn:
        asked, recipient = _look_up(conn, token)
        if asked is None or recipient is None:
            return _refusal(asked, runtime, accept=accept, accept_language=accept_language)
        _, added = apply_unsubscribe(conn, token, now=runtime.now(), secret=secret)
    state = _state(asked, unsubscribed=True, changed=added)
    return _answer("done" if added else "already", state, runtime, recipient, accept=accept)


def _state(asked: UnsubscribeRequest, *, unsubscribed: bool, changed: bool) -> UnsubscribeState:
    return UnsubscribeState.model_validate(
        {"channel": asked.channel, "unsubscribed": unsubscribed, "changed": changed}
    )


def _configured_secret() -> str | None:
    secret = current_options().unsubscribe_secret
    return secret.get_secret_value() if secret else None


def _look_up(conn: Any, token: str) -> tuple[UnsubscribeRequest | None, Recipient | None]:
    """What the token asks (None: not ours) and its member (None: unknown)."""
    try:
        asked = read_token(load_secret(conn, _configured_secret()), token)
    except UnsubscribeTokenInvalid:
        return None, None
    return asked, fetch_recipients(conn, [asked.member_id]).get(asked.member_id)


def _answer(
    kind: PageKind,
    state: UnsubscribeState,
    runtime: Runtime,
    recipient: Recipient,
    *,
    accept: str | None,
) -> Response:
    if _wants_json(accept):
        return Response(state.model_dump_json(), media_type="application/json")
    locale = page_locale(recipient.locale, _default_locale(runtime))
    page = render_page(kind, locale=locale, channel=state.channel, sender=_sender(runtime))
    return HTMLResponse(page, headers=_PAGE_HEADERS)


def _refusal(
    asked: UnsubscribeRequest | None,
    runtime: Runtime,
    *,
    accept: str | None,
    accept_language: str | None,
) -> Response:
    kind: PageKind = "invalid" if asked is None else "unknown"
    if _wants_json(accept):
        raise _INVALID if asked is None else _UNKNOWN
    locale = page_locale(*ranked(accept_language), _default_locale(runtime))
    page = render_page(kind, locale=locale, sender=_sender(runtime))
    return HTMLResponse(page, status_code=_STATUS[kind], headers=_PAGE_HEADERS)


def _wants_json(accept: str | None) -> bool:
    """JSON when the client ranks a JSON type above HTML (a browser never does)."""
    for media_type in ranked(accept):
        if "html" in media_type:
            return False
        if "json" in media_type:
            return True
    return False


def _default_locale(runtime: Runtime) -> str | None:
    program = _program(runtime)
    return program.program_file.program.default_locale if program is not None else None


def _sender(runtime: Runtime) -> str | None:
    program = _program(runtime)
    return program.program_file.program.name if program is not None else None


def _program(runtime: Runtime) -> Any:
    """The program if one loads: the pages still work, in plainer words, without it."""
    try:
        return runtime.program_or_none()
    except ProgramError:  # a broken program must not stop anyone unsubscribing
        return None


async def raw_body(request: Request) -> bytes:
    """The body exactly as sent: the signature is over these bytes."""
    return await request.body()


_CALLBACK = WebhookCallback.model_json_schema()
_CALLBACKS = {"type": "array", "items": _CALLBACK, "minItems": 1, "maxItems": MAX_CALLBACKS}
_WEBHOOK_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"oneOf": [_CALLBACK, _CALLBACKS]}}},
}


@router.post(
    "/webhooks/{channel}/{provider}",
    tags=["webhooks"],
    response_model=WebhookReport,
    responses=problem_responses(
        401,
        404,
        422,
        d401="Missing, wrong or stale signature (code bad_signature or stale_timestamp).",
        d404="No secret is configured for this channel and provider.",
    ),
    openapi_extra={"requestBody": _WEBHOOK_BODY},
    summary="A provider's delivery callbacks, signed with its secret",
)
def provider_webhook(
    channel: str,
    provider: str,
    runtime: Served,
    body: Annotated[bytes, Depends(raw_body)],
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
    timestamp: Annotated[str | None, Header(alias=TIMESTAMP_HEADER)] = None,
) -> dict[str, Any]:
    """One callback or a list (delivered, bounced, opened, clicked, complained), each recorded
    once per id; a callback about a message the engine has no record of is answered
    ``unknown_message`` (not an error, so the provider does not send it again)."""
    secret = current_options().webhook_secret(channel, provider)
    if secret is None:
        raise Problem(404, "unknown_provider", "No such webhook",
                      f"no secret is configured for {channel}/{provider}; "
                      "add it to LOYALTY_WEBHOOK_SECRETS")  # fmt: skip
    now = runtime.now()
    checked = check_signature(secret, body=body, signature=signature, timestamp=timestamp, now=now)
    if not checked.ok:
        raise Problem(401, checked.code, "The webhook is not signed by this provider",
                      checked.detail)  # fmt: skip
    callbacks = _callbacks(body)
    with runtime.engine.begin() as conn:
        outcomes = record_webhook(conn, callbacks, channel=channel, provider=provider, now=now)
    return {"results": [asdict(outcome) for outcome in outcomes]}


def _callbacks(body: bytes) -> list[WebhookCallback]:
    try:
        return parse_callbacks(body)
    except ValidationError as exc:
        errors = [{"field": field_path(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        raise Problem(422, "invalid_request", "Invalid request", detail, errors=errors) from exc
    except ValueError as exc:
        detail = f"the body is not JSON ({exc}); send one callback object or a list of them"
        raise Problem(422, "invalid_request", "Invalid request", detail) from exc
