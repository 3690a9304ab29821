"""Channel transports built from settings: a real provider per channel where one is configured,
with a secondary for failover and a shared send rate, else the outbox file.

The embedded default (no SMTP, SMS or push settings) writes every channel to
``settings.outbox``.
"""

from __future__ import annotations

from core.settings import Settings
from notifications.settings import NotificationSettings, SmtpSecurity
from notifications.transports.base import BaseTransport
from notifications.transports.failover import FailoverTransport
from notifications.transports.http import PAYLOADS, HttpTransport
from notifications.transports.limits import RateLimitedTransport, rate_limiter_backend
from notifications.transports.outbox import OutboxTransport
from notifications.transports.smtp import Security, SmtpTransport

__all__ = ["BaseTransport", "build_transports"]


def build_transports(settings: Settings, options: NotificationSettings) -> dict[str, BaseTransport]:
    """Channel → transport, as the settings describe."""
    backend = rate_limiter_backend(settings.redis_url)
    rates = {
        "email": options.email_rate_per_s,
        "sms": options.sms_rate_per_s,
        "push": options.push_rate_per_s,
    }
    transports: dict[str, BaseTransport] = {}
    for channel in ("email", "sms", "push"):
        providers = [
            provider
            for provider in (_primary(channel, settings, options), _secondary(channel, options))
            if provider is not None
        ]
        if not providers:
            transports[channel] = OutboxTransport(settings.outbox, channel=channel)
            continue
        if rates[channel]:
            providers = [
                RateLimitedTransport(
                    provider,
                    backend=backend,
                    per_second=rates[channel],
                    max_wait_s=options.rate_limit_wait_s,
                )
                for provider in providers
            ]
        transports[channel] = FailoverTransport(*providers) if len(providers) == 2 else providers[0]
    return transports


def _security(security: SmtpSecurity, *, tls: bool, port: int) -> Security:
    if security != "auto":
        return security
    if not tls:
        return "none"
    return "ssl" if port == 465 else "starttls"


def _primary(
    channel: str, settings: Settings, options: NotificationSettings
) -> BaseTransport | None:
    if channel == "email" and settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SmtpTransport(
            host=settings.smtp_host,
            port=settings.smtp_port,
            user=settings.smtp_user,
            password=password,
            security=_security(
                options.smtp_security, tls=settings.smtp_tls, port=settings.smtp_port
            ),
            timeout=options.smtp_timeout_s,
            name="smtp",
        )
    endpoint = {"sms": settings.sms_endpoint, "push": settings.push_endpoint}.get(channel)
    key = {"sms": settings.sms_api_key, "push": settings.push_api_key}.get(channel)
    if endpoint:
        return _http(channel, endpoint, key.get_secret_value() if key else None, options, "")
    return None


def _secondary(channel: str, options: NotificationSettings) -> BaseTransport | None:
    if channel == "email" and options.secondary_smtp_host:
        password = options.secondary_smtp_password
        return SmtpTransport(
            host=options.secondary_smtp_host,
            port=options.secondary_smtp_port,
            user=options.secondary_smtp_user,
            password=password.get_secret_value() if password else None,
            security=_security(
                options.secondary_smtp_security, tls=True, port=options.secondary_smtp_port
            ),
            timeout=options.smtp_timeout_s,
            name="smtp-secondary",
        )
    endpoint = {"sms": options.secondary_sms_endpoint, "push": options.secondary_push_endpoint}
    key = {"sms": options.secondary_sms_api_key, "push": options.secondary_push_api_key}
    if endpoint.get(channel):
        secret = key[channel]
        api_key = secret.get_secret_value() if secret else None
        return _http(channel, endpoint[channel] or "", api_key, options, "-secondary")
    return None


def _http(
    channel: str, endpoint: str, api_key: str | None, options: NotificationSettings, suffix: str
) -> HttpTransport:
    shape = "sms" if channel == "sms" else ("fcm" if options.push_payload == "fcm" else "push")
    return HttpTransport(
        channel=channel,
        endpoint=endpoint,
        api_key=api_key,
        payload=PAYLOADS[shape],
        name=f"{channel}-http{suffix}",
        auth_header=options.http_auth_header,
        auth_scheme=options.http_auth_scheme,
        timeout=options.http_timeout_s,
    )
