"""A served Tea House that sends email for the unsubscribe and webhook tests: two members,
Mei (zh-CN) and Alex (en), a real SMTP server on loopback (aiosmtpd) as the email provider,
the public base URL set to the live server's address, and a webhook secret for email/smtp."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from live_server import http_runtime, live_server

from core.clock import FixedClock, set_clock
from core.events.handlers import HandlerRegistry
from core.events.intake import Intake, ingest
from core.runtime import Runtime
from notifications.caps import DatabaseCapCounter
from notifications.dispatch import send_messages
from notifications.dispatcher import Dispatcher, use_dispatcher
from notifications.guardrails import Policy, Recipient
from notifications.requests import request_message
from notifications.samples import sample_variables
from notifications.settings import NotificationSettings
from notifications.store import fetch_recipients
from notifications.transports.smtp import SmtpTransport
from notifications.transports.stub import StubTransport

NOW = datetime(2026, 11, 5, 4, 0, tzinfo=UTC)  # noon in Shanghai: outside quiet hours
MEMBERS = {"m-mei": ("Mei", "zh-CN"), "m-alex": ("Alex", "en")}
WEBHOOK_SECRETS = {
    "email/smtp": "whsec-smtp-0123456789abcdef",
    "email/smtp-secondary": "whsec-second-0123456789abcdef",
    "sms/gateway": "whsec-sms-0123456789abcdef",
}


class Mailbox:
    """An aiosmtpd handler keeping each email it receives."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(parsed)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@dataclass
class MessagingShop:
    base: str
    runtime: Runtime
    dispatcher: Dispatcher
    mailbox: Mailbox
    sent: dict[str, str] = field(default_factory=dict)  # member → the message id sent them

    def send_email(self, member_id: str, *, dedupe_key: str | None = None) -> str:
        """Ask for the cart reminder by email for the member and send it through SMTP."""
        program = self.runtime.program
        locale = MEMBERS.get(member_id, ("", "en"))[1]
        with self.runtime.engine.begin() as conn:  # a connection: nothing enqueued, sent below
            requested = request_message(
                conn, member_id=member_id, channels=["email"], template_id="cart-coupon",
                variables=sample_variables(program, locale), kind="marketing",
                dedupe_key=dedupe_key or f"cart-{member_id}", now=NOW, program=program,
            )  # fmt: skip
        send_messages(self.runtime.engine, [requested.message_id], now=NOW,
                      dispatcher=self.dispatcher)  # fmt: skip
        self.sent.setdefault(member_id, requested.message_id)
        return requested.message_id

    def recipient(self, member_id: str) -> Recipient:
        with self.runtime.engine.connect() as conn:
            return fetch_recipients(conn, [member_id])[member_id]


def member_events() -> list[dict[str, Any]]:
    return [
        {
            "id": f"reg-{member_id}",
            "type": "member.registered",
            "occurred_at": "2026-11-01T10:00:00+08:00",
            "member_id": member_id,
            "data": {
                "first_name": name,
                "email": f"{member_id}@example.com",
                "locale": locale,
                "timezone": "Asia/Shanghai",
                "consents": {"email": True},
            },
        }
        for member_id, (name, locale) in MEMBERS.items()
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def build_dispatcher(runtime: Runtime, *, base: str, smtp_port: int) -> Dispatcher:
    """Email through the loopback SMTP server; links and secrets as an operator sets them."""
    options = NotificationSettings(  # type: ignore[call-arg]
        _env_file=None, public_base_url=base, webhook_secrets=WEBHOOK_SECRETS
    )
    program = runtime.program
    return Dispatcher(
        transports={
            "email": SmtpTransport(host="127.0.0.1", port=smtp_port, security="none"),
            "sms": StubTransport("sms"),
            "push": StubTransport("push"),
        },
        caps=DatabaseCapCounter(),
        options=options,
        policy=Policy.from_program(program),
        email_sender=program.program_file.messaging.sender.email,
    )


@contextmanager
def serve_messaging(db_url: str, examples: Path, folder: Path) -> Iterator[MessagingShop]:
    """The shop's members registered, served on loopback, sending through the SMTP server."""
    set_clock(FixedClock(NOW))
    runtime = http_runtime(db_url, examples / "program", folder)
    # Only the members projection: no campaign reacts to the registrations.
    intake = Intake(engine=runtime.engine, now=NOW, source="test", registry=HandlerRegistry())
    report = ingest(member_events(), intake)
    assert report.rejected == 0, report
    with smtp_server() as (mailbox, port), live_server(runtime) as base:
        dispatcher = build_dispatcher(runtime, base=base, smtp_port=port)
        with use_dispatcher(dispatcher):
            yield MessagingShop(base, runtime, dispatcher, mailbox)
