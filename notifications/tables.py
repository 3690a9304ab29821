"""Tables of the notifications package: messages and their attempts, delivery callbacks,
suppressions, unsubscribes, and frequency-cap counters (when no Redis is configured).

A message is stored before any provider is called, under a unique dedupe key; its id is
derived from that key, so the same request always names the same message.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from core.db import JsonDocument, UtcDateTime, metadata

messages = Table(
    "notification_messages",
    metadata,
    Column("message_id", String(40), primary_key=True),
    Column("dedupe_key", String(300), nullable=False),
    Column("member_id", String(200), nullable=False),
    Column("campaign_id", String(64)),
    Column("template_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # marketing | transactional
    Column("channel", String(8)),  # None when the member could receive none of those asked
    Column("locale", String(35)),
    Column("subject", Text),
    Column("title", Text),
    Column("body", Text),
    Column("html", Text),
    Column("segments", Integer),
    Column("to_masked", String(320)),
    Column("address_hash", String(64)),  # of the address last sent to (for suppression)
    # queued, deferred, retrying, sending, sent, failed, suppressed, dead, unknown, cancelled
    Column("status", String(16), nullable=False),
    Column("reason", String(64)),  # why suppressed, deferred, failed, dead, unknown, cancelled
    Column("not_before", UtcDateTime()),
    Column("attempts", Integer, nullable=False, default=0),
    Column("provider", String(64)),
    Column("provider_message_id", String(200)),
    Column("error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("sending_since", UtcDateTime()),
    Column("sent_at", UtcDateTime()),
    Column("delivery", String(16)),  # delivered, opened, clicked, bounced, complained
    Column("delivery_at", UtcDateTime()),
    UniqueConstraint("dedupe_key"),
    Index("ix_notification_messages_status_due", "status", "not_before"),
    Index("ix_notification_messages_member", "member_id", "created_at"),
    Index("ix_notification_messages_campaign", "campaign_id"),
    Index("ix_notification_messages_provider_id", "provider_message_id"),
)

attempts = Table(
    "notification_attempts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("message_id", String(40), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("provider", String(64), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("outcome", String(16), nullable=False),  # sent, transient, permanent, unknown
    Column("provider_message_id", String(200)),
    Column("error", Text),
)

delivery_events = Table(
    "notification_delivery_events",
    metadata,
    Column("callback_id", String(200), primary_key=True),  # a redelivered callback is ignored
    Column("message_id", String(40), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("detail", JsonDocument, nullable=False),
)

suppressions = Table(
    "notification_suppressions",
    metadata,
    Column("address_hash", String(64), primary_key=True),  # never the address itself
    Column("channel", String(8), primary_key=True),
    Column("to_masked", String(320)),
    Column("reason", String(32), nullable=False),  # hard_bounce, complaint, invalid_address
    Column("message_id", String(40)),
    Column("created_at", UtcDateTime(), nullable=False),
)

unsubscribes = Table(
    "notification_unsubscribes",
    metadata,
    Column("member_id", String(200), primary_key=True),
    Column("channel", String(8), primary_key=True),
    Column("unsubscribed_at", UtcDateTime(), nullable=False),
    Column("message_id", String(40)),
    Column("source", String(32), nullable=False),  # link, complaint
)

cap_counters = Table(
    "notification_cap_counters",
    metadata,
    Column("member_id", String(200), primary_key=True),
    Column("period", String(16), primary_key=True),  # d2026-11-05, w2026-W45 (member's zone)
    Column("count", Integer, nullable=False),
)
