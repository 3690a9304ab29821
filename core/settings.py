"""Engine settings, read from ``LOYALTY_*`` environment variables or a ``.env`` file."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.durations import parse_duration


class Settings(BaseSettings):
    """Everything an operator can set; the defaults are the embedded engine (SQLite, no Redis)."""

    model_config = SettingsConfigDict(
        env_prefix="LOYALTY_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite:///loyalty.db"
    redis_url: str | None = None
    program_dir: Path = Path("program")
    outbox: Path = Path("outbox.jsonl")

    worker_processes: int = Field(default=2, ge=1)
    worker_threads: int = Field(default=4, ge=1)
    max_retries: int = Field(default=8, ge=0)
    min_backoff_ms: int = Field(default=1_000, ge=1)
    max_backoff_ms: int = Field(default=15 * 60_000, ge=1)
    max_age_ms: int = Field(default=24 * 3_600_000, ge=1)
    time_limit_ms: int = Field(default=10 * 60_000, ge=1)
    # dramatiq's Prometheus metrics of `loyalty-engine worker`, served on this port (any path);
    # unset: none. One port per worker command (its processes are summed).
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65_535)
    worker_metrics_host: str = "127.0.0.1"
    ingest_batch_size: int = Field(default=1_000, ge=1, le=100_000)
    # An event more than this far after the engine clock is rejected (a sender's broken clock
    # would otherwise keep points pending for centuries); a duration such as 24h or 90m.
    event_future_tolerance: timedelta = timedelta(hours=24)
    # Longer input lines are dead-lettered unread (an order of 1,000 items is about 150 KB).
    max_line_bytes: int = Field(default=256 * 1024, ge=1_024, le=16 * 1024 * 1024)

    # The HTTP API (loyalty-engine serve).
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65_535)
    api_workers: int = Field(default=1, ge=1, le=256)
    # Requests per minute per API key (a fixed one-minute window); 0 turns the limit off.
    api_rate_limit: int = Field(default=600, ge=0)
    # A larger request body is refused (413) before it is read (1,000 order events of 30 items
    # each are a few MB).
    api_max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1_024)
    # /v1 requests one serve worker works on at once; more are answered 503 overloaded at once
    # (Retry-After: 1) instead of queueing past their clients' timeouts; 0: no limit.
    api_max_in_flight: int = Field(default=32, ge=0)
    api_idempotency_ttl: timedelta = timedelta(hours=24)
    # How long a second request with an Idempotency-Key still running waits for its answer
    # before it gets 409 idempotency_in_progress.
    api_idempotency_wait: timedelta = timedelta(seconds=5)
    # uvicorn's line per request on stderr; off by default, as in gunicorn (/metrics counts the
    # requests, and a proxy in front usually logs them): the line cost 4% of a checkout.
    api_access_log: bool = False
    # GET /metrics (Prometheus, no API key, like /livez); false removes it (a 404).
    api_metrics: bool = True
    # Members (and coupons, and API keys) whose rows one serve worker keeps for checkout and
    # key lookups, each dropped as soon as PostgreSQL announces a change to its rows
    # (core.readcache); 0 turns the cache off. The embedded default (SQLite) has no such
    # announcements and never caches.
    api_read_cache: int = Field(default=10_000, ge=0)

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: bool = True
    sms_endpoint: str | None = None
    sms_api_key: SecretStr | None = None
    push_endpoint: str | None = None
    push_api_key: SecretStr | None = None

    @field_validator(
        "event_future_tolerance", "api_idempotency_ttl", "api_idempotency_wait", mode="before"
    )
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: in-process broker and worker."""
        return not self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
