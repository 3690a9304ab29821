"""Email through a real SMTP server (aiosmtpd on loopback): multipart, headers, TLS, errors."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from notification_helpers import NOW
from sqlalchemy import Engine

from core.events.handlers import unit_of_work
from core.program.loader import Program
from notifications.dispatch import send_messages
from notifications.dispatcher import Dispatcher
from notifications.errors import PermanentDeliveryError, TransientDeliveryError
from notifications.records import apply_unsubscribe
from notifications.requests import request_message
from notifications.samples import sample_variables
from notifications.transports.base import OutgoingMessage, Receipt
from notifications.transports.failover import FailoverTransport
from notifications.transports.smtp import SmtpTransport

UNSUBSCRIBE = "https://shop.example.com/unsubscribe/u1.abc.def"


class Mailbox:
    """An aiosmtpd handler keeping each email; refuses recipients it is told to."""

    def __init__(self, *, refuse: dict[str, str] | None = None) -> None:
        self.received: list[EmailMessage] = []
        self.envelopes: list[Any] = []
        self.refuse = refuse or {}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:  # fmt: skip
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(parsed)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., tuple[Mailbox, int]]]:
    controllers: list[Controller] = []

    def start(mailbox: Mailbox | None = None, **options: Any) -> tuple[Mailbox, int]:
        mailbox = mailbox or Mailbox()
        port = free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return mailbox, port

    yield start
    for controller in controllers:
        controller.stop()


def message(to: str = "alice@example.com", **overrides: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "message_id": "msg_0123456789abcdef",
        "channel": "email",
        "to": to,
        "member_id": "m-alice",
        "template": "cart-coupon",
        "locale": "en",
        "subject": "Alice, a coupon for the items in your cart",
        "body": f"Hi Alice,\nYour coupon is waiting.\nUnsubscribe: {UNSUBSCRIBE}",
        "html": f'<p>Hi Alice</p><p><a href="{UNSUBSCRIBE}">Unsubscribe</a></p>',
        "sent_at": NOW,
        "sender": "Lifestyle Club <club@example.com>",
        "unsubscribe_url": UNSUBSCRIBE,
    } | overrides
    return OutgoingMessage(**values)


def test_the_server_receives_a_multipart_email_with_one_click_unsubscribe_headers(
    smtp_server: Callable[..., tuple[Mailbox, int]],
) -> None:
    mailbox, port = smtp_server()
    transport = SmtpTransport(host="127.0.0.1", port=port, security="none")

    receipt = transport.send(message())

    [received] = mailbox.received
    assert receipt == Receipt("smtp", "<msg_0123456789abcdef@loyalty-engine>")
    assert mailbox.envelopes[0].mail_from == "club@example.com"
    assert mailbox.envelopes[0].rcpt_tos == ["alice@example.com"]
    assert received["From"] == "Lifestyle Club <club@example.com>"
    assert received["Subject"] == "Alice, a coupon for the items in your cart"
    assert received["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received["Message-ID"] == "<msg_0123456789abcdef@loyalty-engine>"
    assert received.get_content_type() == "multipart/alternative"
    text = received.get_body(("plain",))
    html = received.get_body(("html",))
    assert text is not None and UNSUBSCRIBE in text.get_content()
    assert html is not None and f'href="{UNSUBSCRIBE}"' in html.get_content()


def test_starttls_and_login_are_used_when_configured(
    smtp_server: Callable[..., tuple[Mailbox, int]], certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins: list[tuple[str, str]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      data: Any) -> AuthResult:  # fmt: skip
        assert isinstance(data, LoginPassword)
        logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"s3cret", handled=False)

    mailbox, port = smtp_server(
        tls_context=server_tls, require_starttls=True, authenticator=authenticator,
        auth_required=True,
    )  # fmt: skip
    client_tls = ssl.create_default_context(cafile=str(cert))
    transport = SmtpTransport(
        host="127.0.0.1", port=port, user="club", password="s3cret", security="starttls",
        ssl_context=client_tls,
    )  # fmt: skip

    transport.send(message())

    assert logins == [("club", "s3cret")]
    assert len(mailbox.received) == 1


def test_a_refused_recipient_is_permanent_and_suppresses_the_address_masked(
    smtp_server: Callable[..., tuple[Mailbox, int]],
) -> None:
    refuse = {"ghost@example.com": "550 5.1.1 <ghost@example.com>: no such user"}
    _, port = smtp_server(Mailbox(refuse=refuse))
    transport = SmtpTransport(host="127.0.0.1", port=port, security="none")

    with pytest.raises(PermanentDeliveryError) as raised:
        transport.send(message(to="ghost@example.com"))

    assert raised.value.suppress
    assert "ghost@example.com" not in str(raised.value)
    assert "g***@example.com" in str(raised.value)


def test_a_temporary_refusal_is_transient(smtp_server: Callable[..., tuple[Mailbox, int]]) -> None:
    _, port = smtp_server(Mailbox(refuse={"busy@example.com": "451 4.3.0 try again later"}))
    transport = SmtpTransport(host="127.0.0.1", port=port, security="none")

    with pytest.raises(TransientDeliveryError, match="451"):
        transport.send(message(to="busy@example.com"))


def test_a_server_that_is_down_is_a_transient_error() -> None:
    transport = SmtpTransport(host="127.0.0.1", port=free_port(), security="none", timeout=2)

    with pytest.raises(TransientDeliveryError):
        transport.send(message())


def test_a_wrong_password_is_transient_not_the_members_fault(
    smtp_server: Callable[..., tuple[Mailbox, int]],
) -> None:
    _, port = smtp_server(
        authenticator=lambda *args: AuthResult(success=False, handled=False),
        auth_require_tls=False,
    )
    transport = SmtpTransport(
        host="127.0.0.1", port=port, user="club", password="wrong", security="none", timeout=5
    )

    with pytest.raises(TransientDeliveryError, match="login refused"):
        transport.send(message())


def test_when_the_primary_relay_is_down_the_secondary_delivers(
    smtp_server: Callable[..., tuple[Mailbox, int]],
) -> None:
    mailbox, port = smtp_server()
    down = SmtpTransport(host="127.0.0.1", port=free_port(), security="none", timeout=2)
    up = SmtpTransport(host="127.0.0.1", port=port, security="none", name="smtp-secondary")

    receipt = FailoverTransport(down, up).send(message())

    assert receipt.provider == "smtp-secondary"
    assert len(mailbox.received) == 1


def test_a_batch_goes_over_one_connection(smtp_server: Callable[..., tuple[Mailbox, int]]) -> None:
    mailbox, port = smtp_server()
    transport = SmtpTransport(host="127.0.0.1", port=port, security="none")
    batch = [message(message_id=f"msg_{n}", to=f"u{n}@example.com") for n in range(5)]

    results = transport.send_many(batch)

    assert all(isinstance(result, Receipt) for result in results)
    assert sorted(m["To"] for m in mailbox.received) == [f"u{n}@example.com" for n in range(5)]


def test_a_requested_email_arrives_with_an_unsubscribe_link_that_works(
    smtp_server: Callable[..., tuple[Mailbox, int]],
    engine: Engine,
    program: Program,
    dispatcher: Dispatcher,
    add_member: Callable[..., str],
) -> None:
    mailbox, port = smtp_server()
    dispatcher.transports = {
        **dispatcher.transports,
        "email": SmtpTransport(host="127.0.0.1", port=port, security="none"),
    }
    add_member("m-1", email="alice@example.com", locale="en")
    with unit_of_work(engine, now=NOW, program=program) as ctx:
        message_id = request_message(
            ctx, member_id="m-1", channels=["email"], template_id="cart-coupon",
            variables=sample_variables(program, "en"), kind="marketing", dedupe_key="k-1",
            now=NOW,
        ).message_id  # fmt: skip

    send_messages(engine, [message_id], now=NOW, dispatcher=dispatcher)

    [received] = mailbox.received
    link = received["List-Unsubscribe"].strip("<>")
    text = received.get_body(("plain",))
    html = received.get_body(("html",))
    assert received["Subject"] == "Alexandra, we kept your tea for you"
    assert text is not None and f"Unsubscribe: {link}" in text.get_content()
    assert html is not None and f'<a href="{link}">' in html.get_content()
    token = link.rsplit("/", 1)[1]
    with engine.begin() as conn:
        request, added = apply_unsubscribe(conn, token, now=NOW)
    assert (request.member_id, request.channel, request.message_id, added) == (
        "m-1", "email", message_id, True,
    )  # fmt: skip
