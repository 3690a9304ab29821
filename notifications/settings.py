"""Settings of the notifications package beyond the providers ``core.settings`` already has.

Read from ``LOYALTY_*`` environment variables or ``.env``, like the engine's settings:
secondary providers per channel (a failover when the primary fails with a transient error),
the unsubscribe link and its signing key, the secrets of provider webhooks, retry schedule,
per-provider send rates.

With ``LOYALTY_PUBLIC_BASE_URL`` set (where shoppers reach ``loyalty-engine serve``), the links
messages carry point at its page, ``{base}/v1/unsubscribe/{token}``, unless
``LOYALTY_UNSUBSCRIBE_URL`` names another.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SmtpSecurity = Literal["auto", "starttls", "ssl", "none"]
UNSUBSCRIBE_PATH = "/v1/unsubscribe/{token}"
# "<channel>/<provider>": the provider part is short so a namespaced callback id still fits.
WEBHOOK_KEY = re.compile(r"(email|sms|push)/[a-z0-9][a-z0-9_-]{0,39}")


class NotificationSettings(BaseSettings):
    """What an operator can set for message delivery; defaults suit the embedded engine."""

    model_config = SettingsConfigDict(
        env_prefix="LOYALTY_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,  # an error must not print a webhook secret or a password
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
    public_base_url: str | None = None  # e.g. https://loyalty.shop.example.com

    # "<channel>/<provider>" → the HMAC-SHA256 key of that provider's delivery webhooks.
    webhook_secrets: dict[str, SecretStr] = Field(default_factory=dict)

    max_attempts: int = Field(default=6, ge=1)
    retry_min_backoff_s: float = Field(default=30.0, gt=0)
    retry_max_backoff_s: float = Field(default=3600.0, gt=0)
    sending_lease_s: float = Field(default=300.0, gt=0)

    # Sends per second per provider, shared by every worker through Redis; 0 = unlimited.
    email_rate_per_s: int = Field(default=50, ge=0)
    sms_rate_per_s: int = Field(default=20, ge=0)
    push_rate_per_s: int = Field(default=500, ge=0)
    rate_limit_wait_s: float = Field(default=5.0, ge=0)

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        base = value.strip().rstrip("/")
        if not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", base):
            raise ValueError(
                f"LOYALTY_PUBLIC_BASE_URL must be an http(s) URL without query, such as "
                f"https://loyalty.shop.example.com; got {value!r}"
            )
        return base

    @field_validator("webhook_secrets")
    @classmethod
    def _webhook_keys(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key, secret in value.items():
            if not WEBHOOK_KEY.fullmatch(key):
                raise ValueError(
                    f"LOYALTY_WEBHOOK_SECRETS: {key!r} is not <channel>/<provider>; write it "
                    'like "email/smtp" (channel email, sms or push; provider in lowercase '
                    "letters, digits, - or _, at most 40)"
                )
            if len(secret.get_secret_value()) < 16:
                raise ValueError(
                    f"LOYALTY_WEBHOOK_SECRETS: the secret of {key!r} is shorter than 16 "
                    "characters; use the provider's signing key or a long random one"
                )
        return value

    @model_validator(mode="after")
    def _links_to_the_served_page(self) -> NotificationSettings:
        if self.public_base_url and "unsubscribe_url" not in self.model_fields_set:
            self.unsubscribe_url = self.public_base_url + UNSUBSCRIBE_PATH
        return self

    def webhook_secret(self, channel: str, provider: str) -> bytes | None:
        """The key that signs ``channel``/``provider``'s webhooks (None: not configured)."""
        secret = self.webhook_secrets.get(f"{channel}/{provider}")
        return secret.get_secret_value().encode() if secret else None


@lru_cache(maxsize=1)
def get_notification_settings() -> NotificationSettings:
    """The process-wide notification settings, read once."""
    return NotificationSettings()
