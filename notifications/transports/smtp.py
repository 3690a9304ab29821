"""Email over SMTP (smtplib): implicit TLS or STARTTLS, login, multipart text and HTML, and the
one-click unsubscribe headers of RFC 8058.

smtplib errors are mapped here: a 5xx about the recipient (550, 551, 553) is permanent and
suppresses the address; other 5xx are permanent; 4xx, lost connections, timeouts and failed
logins are transient (a login failure is the provider's or our configuration's fault, never
the member's, so it fails over and retries rather than giving up on the message).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal

from notifications.privacy import scrub
from notifications.transports.base import (
    BaseTransport,
    DeliveryError,
    OutgoingMessage,
    PermanentDeliveryError,
    Receipt,
    TransientDeliveryError,
)

Security = Literal["starttls", "ssl", "none"]
_BAD_RECIPIENT = frozenset({550, 551, 553})


def build_email(message: OutgoingMessage, *, sender: str) -> EmailMessage:
    """A multipart/alternative email: the text part first, then HTML."""
    email = EmailMessage()
    email["From"] = message.sender or sender
    email["To"] = message.to
    email["Subject"] = message.subject or ""
    email["Date"] = format_datetime(message.sent_at)
    email["Message-ID"] = f"<{message.message_id}@loyalty-engine>"
    email["X-Loyalty-Message-Id"] = message.message_id
    unsubscribe = _list_unsubscribe(message)
    if unsubscribe:
        email["List-Unsubscribe"] = unsubscribe
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email.set_content(message.body)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email


def _list_unsubscribe(message: OutgoingMessage) -> str | None:
    links = []
    if message.unsubscribe_url:
        links.append(f"<{message.unsubscribe_url}>")
    if message.unsubscribe_mailto:
        links.append(f"<mailto:{message.unsubscribe_mailto}?subject=unsubscribe>")
    return ", ".join(links) or None


class SmtpTransport(BaseTransport):
    """An SMTP relay; one connection per batch of messages."""

    channel = "email"
    idempotent = False  # SMTP has no idempotency key; see dispatch's recovery policy

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str = "",
        user: str | None = None,
        password: str | None = None,
        security: Security = "starttls",
        timeout: float = 20.0,
        name: str = "smtp",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.user, self.password = user, password
        self.security, self.timeout, self.name = security, timeout, name
        self.ssl_context = ssl_context or ssl.create_default_context()

    def send(self, message: OutgoingMessage) -> Receipt:
        result = self.send_many([message])[0]
        if isinstance(result, DeliveryError):
            raise result
        return result

    def send_many(self, messages: Sequence[OutgoingMessage]) -> list[Receipt | DeliveryError]:
        try:
            with self._connection() as client:
                return [self._send_one(client, message) for message in messages]
        except DeliveryError as exc:
            return [exc for _ in messages]

    def _send_one(self, client: smtplib.SMTP, message: OutgoingMessage) -> Receipt | DeliveryError:
        email = build_email(message, sender=self.sender)
        try:
            refused = client.send_message(email)
        except (smtplib.SMTPException, OSError) as exc:
            return self._mapped(exc)
        if refused:
            code, reply = next(iter(refused.values()))
            return self._mapped(smtplib.SMTPResponseException(code, reply))
        return Receipt(self.name, email["Message-ID"])

    @contextmanager
    def _connection(self) -> Iterator[smtplib.SMTP]:
        try:
            client = self._connect()
        except (smtplib.SMTPException, OSError) as exc:
            raise self._mapped(exc) from exc
        try:
            yield client
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.ssl_context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                client.starttls(context=self.ssl_context)
        if self.user:
            client.login(self.user, self.password or "")
        return client

    def _mapped(self, exc: BaseException) -> DeliveryError:
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            code, reply = next(iter(exc.recipients.values()))
            exc = smtplib.SMTPResponseException(code, reply)
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return TransientDeliveryError(f"login refused ({exc.smtp_code})", provider=self.name)
        if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500:
            text = _reply_text(exc.smtp_error)
            suppress = exc.smtp_code in _BAD_RECIPIENT
            return PermanentDeliveryError(
                f"{exc.smtp_code} {text}", provider=self.name, suppress=suppress
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            return TransientDeliveryError(
                f"{exc.smtp_code} {_reply_text(exc.smtp_error)}", provider=self.name
            )
        return TransientDeliveryError(
            f"{type(exc).__name__}: {scrub(str(exc))}", provider=self.name
        )


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return scrub(text.strip()[:200])
