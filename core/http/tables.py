"""Tables of the HTTP API: its keys (only a hash of each secret) and the idempotency records of
POST requests (kept 24 h)."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, LargeBinary, String, Table, Text

from core.db import JsonDocument, UtcDateTime, metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("scopes", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime()),
    Column("last_used_at", UtcDateTime()),
)

api_idempotency = Table(
    "api_idempotency",
    metadata,
    # The API key the request came with ("" for endpoints that take signatures instead).
    Column("key_id", String(32), primary_key=True),
    Column("idempotency_key", String(255), primary_key=True),
    Column("method", String(10), nullable=False),
    Column("path", Text, nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # running | done
    Column("response_status", Integer),
    Column("response_headers", JsonDocument),
    Column("response_body", LargeBinary),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime()),
    Index("ix_api_idempotency_created_at", "created_at"),
)
