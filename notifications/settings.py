"""Settings of the notifications package beyond the providers ``core.settings`` already has.

Read from ``LOYALTY_*`` environment variables or ``.env``, like the engine's settings:
secondary providers per channel (a failover when the primary fails with a transient error),
the unsubscribe link and its signing key, retry schedule, per-provider send rates.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SmtpSecurity = Literal["auto", "starttls", "ssl", "none"]


class NotificationSettings(BaseSettings):
    """What an operator can set for message delivery; defaults suit the embedded engine."""

    model_config = SettingsConfigDict(
        env_prefix="LOYALTY_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # "auto": core's smtp_tls with port 465 means implicit TLS, otherwise STARTTLS.
    smtp_security: SmtpSecurity = "auto"
    smtp_timeout_s: float = Field(default=20.0, gt=0)

    secondary_smtp_host: str | None = None
    secondary_smtp_port: int = 587
    secondary_smtp_user: str | None = None
    secondary_smtp_password: SecretStr | None = None
    secondary_smtp_security: SmtpSecurity = "starttls"
    secondary_sms_endpoint: str | None = None
    secondary_sms_api_key: SecretStr | None = None
    secondary_push_endpoint: str | None = None
    secondary_push_api_key: SecretStr | None = None

    # How the API key is sent to the HTTP providers: "<header>: <scheme> <key>".
    http_auth_header: str = "Authorization"
    http_auth_scheme: str = "Bearer"
    http_timeout_s: float = Field(default=10.0, gt=0)
    push_payload: Literal["generic", "fcm"] = "generic"

    unsubscribe_secret: SecretStr | None = None  # unset: generated once, kept in the database
    unsubscribe_url: str = "http://127.0.0.1:8000/unsubscribe/{token}"
    unsubscribe_mailto: str | None = None

    max_attempts: int = Field(default=6, ge=1)
    retry_min_backoff_s: float = Field(default=30.0, gt=0)
    retry_max_backoff_s: float = Field(default=3600.0, gt=0)
    sending_lease_s: float = Field(default=300.0, gt=0)

    # Sends per second per provider, shared by every worker through Redis; 0 = unlimited.
    email_rate_per_s: int = Field(default=50, ge=0)
    sms_rate_per_s: int = Field(default=20, ge=0)
    push_rate_per_s: int = Field(default=500, ge=0)
    rate_limit_wait_s: float = Field(default=5.0, ge=0)


@lru_cache(maxsize=1)
def get_notification_settings() -> NotificationSettings:
    """The process-wide notification settings, read once."""
    return NotificationSettings()
