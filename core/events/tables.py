"""Tables of the event store, the dead-letter store and the projections other packages read."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from core.db import JsonDocument, Money, UtcDateTime, metadata

events = Table(
    "events",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("member_id", String(200), nullable=False),
    Column("data", JsonDocument, nullable=False),
    Column("source", String(64), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Index("ix_events_member_occurred", "member_id", "occurred_at"),
)

rejected_events = Table(
    "rejected_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(200)),
    Column("source", String(200), nullable=False),
    Column("line", Integer),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
    Column("rejected_at", UtcDateTime(), nullable=False),
)

members = Table(
    "members",
    metadata,
    Column("member_id", String(200), primary_key=True),
    Column("registered_at", UtcDateTime()),
    Column("first_name", String(200)),
    Column("email", String(320)),
    Column("phone", String(64)),
    Column("push_token", String(512)),
    Column("birthday", Date),
    Column("timezone", String(64)),
    Column("locale", String(35)),
    Column("consent_email", Boolean),
    Column("consent_sms", Boolean),
    Column("consent_push", Boolean),
    Column("referral_code", String(64), index=True),
    Column("referred_by", String(64)),
    Column("profile_at", UtcDateTime()),
    Column("first_seen_at", UtcDateTime(), nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("member_id", String(200), nullable=False, index=True),
    Column("total", Money(), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("paid_at", UtcDateTime(), nullable=False, index=True),
    Column("items", JsonDocument, nullable=False),
    Column("coupon_codes", JsonDocument, nullable=False),
    Column("points_redeemed", Integer, nullable=False),
    Column("cart_id", String(200)),
    Column("event_id", String(200), nullable=False),
)

refunds = Table(
    "refunds",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("order_id", String(200), nullable=False, index=True),
    Column("member_id", String(200), nullable=False, index=True),
    Column("amount", Money(), nullable=False),
    Column("refunded_at", UtcDateTime(), nullable=False),
)

carts = Table(
    "carts",
    metadata,
    Column("cart_id", String(200), primary_key=True),
    Column("member_id", String(200), nullable=False, index=True),
    Column("total", Money(), nullable=False),
    Column("items", JsonDocument, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("converted_order_id", String(200)),
    Column("converted_at", UtcDateTime()),
    Index("ix_carts_open_idle", "converted_at", "updated_at"),
)
