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
    UniqueConstraint,
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
    # 64-bit (SQLite's INTEGER already is), bounded by core.bounds.MAX_POINTS_PER_OPERATION.
    Column("points_redeemed", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
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

# A valid event whose handler failed (or that arrived while no program was loaded): kept here,
# with the error and attempts, until a retry succeeds (core.events.failures, events failures).
handler_failures = Table(
    "handler_failures",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(200), nullable=False),
    Column("handler", String(200), nullable=False),
    Column("member_id", String(200), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    # failed: its handler raised; waiting: held behind an earlier open one of the same member
    # and handler (events are handled in order per member), or stored while no program was
    # loaded; resolved: a retry handled it.
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("first_failed_at", UtcDateTime(), nullable=False),
    Column("last_attempt_at", UtcDateTime()),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime()),
    UniqueConstraint("event_id", "handler"),
    Index("ix_handler_failures_member_status", "member_id", "status"),
    Index("ix_handler_failures_status_next", "status", "next_attempt_at"),
)
