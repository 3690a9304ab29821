"""Tables of the loyalty package: tiers and their history, the points ledger, lots, referrals.

The points ledger is append-only. A credit (earn, award, positive adjust) creates one lot; every
other entry moves points out of (or back into) lots, recorded in ``points_moves``; expiry zeroes
a lot's ``remaining`` into its ``expired_points``. So, per lot,
``remaining = points + Σ moves - expired_points``, and per member the entries sum to the lots'
remaining points, which ``loyalty.verify`` checks. ``points_accounts`` holds a member's debt
(points a refund took back after they were spent) and is the row every writer locks.
``points_holds`` keeps the points a checkout reservation holds for an order until it lapses
(``loyalty.holds``); a hold is not a ledger entry: the points leave the lots only when redeemed.
``points_refusals`` keeps the ``points_redeemed`` of a paid order that could not be redeemed, and
why (``loyalty.order_redemption``): the order stays paid, the refusal is a recorded fact.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

from core.db import JsonDocument, Money, UtcDateTime, metadata

Id = BigInteger().with_variant(Integer, "sqlite")
# Points: 64-bit everywhere (SQLite's INTEGER already is; declaring it so there spares existing
# embedded databases a rebuild of the ledger tables). Operations and balances are bounded far
# below (core.bounds), so sums over any number of a member's rows stay in range.
Points = BigInteger().with_variant(Integer, "sqlite")

member_tiers = Table(
    "member_tiers",
    metadata,
    Column("member_id", String(200), primary_key=True),
    Column("tier_id", String(64), nullable=False),
    # The qualifying spend when the tier was last set (the spend that earned it).
    Column("qualifying_spend", Money(), nullable=False),
    Column("since", UtcDateTime(), nullable=False),
    # Set while the member's spend is below their tier; the downgrade waits out the grace period.
    Column("below_since", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_member_tiers_tier", "tier_id"),
)

tier_history = Table(
    "tier_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("member_id", String(200), nullable=False),
    Column("from_tier", String(64)),
    Column("to_tier", String(64), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("qualifying_spend", Money(), nullable=False),
    Column("changed_at", UtcDateTime(), nullable=False),
    # "order:<order_id>" for an upgrade at payment, "recalc" for the daily job.
    Column("cause", String(250), nullable=False),
    Index("ix_tier_history_member", "member_id", "changed_at"),
)

points_accounts = Table(
    "points_accounts",
    metadata,
    Column("member_id", String(200), primary_key=True),
    Column("debt", Points, nullable=False, server_default="0"),
    Column("updated_at", UtcDateTime(), nullable=False),
    CheckConstraint("debt >= 0", name="debt_not_negative"),
)

points_ledger = Table(
    "points_ledger",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("member_id", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # earn, redeem, expire, reverse, adjust
    Column("points", Points, nullable=False),  # signed change to the member's lots
    Column("debt", Points, nullable=False, server_default="0"),  # signed change to the debt
    Column("rule_id", String(64)),  # the earn rule, or what caused a non-earn entry
    Column("reason", Text, nullable=False),
    Column("order_id", String(200)),
    Column("source_event_id", String(200)),
    Column("idempotency_key", String(400), nullable=False, unique=True),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("details", JsonDocument),
    Index("ix_points_ledger_member", "member_id", "occurred_at"),
    Index(
        "ix_points_ledger_order",
        "order_id",
        postgresql_where=text("order_id IS NOT NULL"),
        sqlite_where=text("order_id IS NOT NULL"),
    ),
)

points_lots = Table(
    "points_lots",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("member_id", String(200), nullable=False),
    Column("entry_id", BigInteger, nullable=False),  # the credit entry that created the lot
    Column("points", Points, nullable=False),
    Column("remaining", Points, nullable=False),
    Column("expired_points", Points, nullable=False, server_default="0"),
    Column("available_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime()),  # None: never expires (expiry policy none)
    Column("expired_at", UtcDateTime()),  # the expiry run that zeroed it
    CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_within_points"),
    Index("ix_points_lots_member", "member_id", "expires_at"),
    Index("ix_points_lots_entry", "entry_id"),
    # The expiry job scans (expired through, as_of] of this index. No index covers the columns
    # lots change in (remaining, expired_points, expired_at), and on PostgreSQL half of each
    # page stays free (fillfactor 50, set by the migration), so those updates stay HOT.
    Index("ix_points_lots_expires", "expires_at"),
)

points_moves = Table(
    "points_moves",
    metadata,
    Column("entry_id", BigInteger, nullable=False),
    Column("lot_id", BigInteger, nullable=False),
    Column("points", Points, nullable=False),  # signed: drawn from (-) or restored to (+)
    PrimaryKeyConstraint("entry_id", "lot_id"),
    Index("ix_points_moves_lot", "lot_id"),
)

loyalty_watermarks = Table(
    "loyalty_watermarks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", UtcDateTime(), nullable=False),
)

referral_codes = Table(
    "referral_codes",
    metadata,
    Column("member_id", String(200), primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("source", String(16), nullable=False),  # "shop" (member.registered) or "generated"
    Column("created_at", UtcDateTime(), nullable=False),
)

referrals = Table(
    "referrals",
    metadata,
    Column("referee_id", String(200), primary_key=True),
    Column("code", String(64), nullable=False),
    Column("referrer_id", String(200)),  # None until the code is known
    Column("status", String(16), nullable=False),  # pending, settled, rejected
    Column("reason", String(64)),  # why it was rejected
    Column("registered_at", UtcDateTime(), nullable=False),
    Column("order_id", String(200)),  # the referee's first paid order, once it qualified
    Column("order_total", Money()),
    Column("order_paid_at", UtcDateTime()),
    Column("settle_at", UtcDateTime()),
    Column("decided_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_referrals_due", "status", "settle_at"),
    Index("ix_referrals_referrer", "referrer_id", "status", "decided_at"),
)

points_holds = Table(
    "points_holds",
    metadata,
    # One hold per order: reserving again for the order replaces it.
    Column("order_id", String(200), primary_key=True),
    Column("member_id", String(200), nullable=False),
    Column("points", Points, nullable=False),
    Column("held_until", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    CheckConstraint("points > 0", name="held_points_positive"),
    Index("ix_points_holds_member", "member_id", "held_until"),
)

points_refusals = Table(
    "points_refusals",
    metadata,
    # One per order: a paid order carries one points_redeemed, recorded once however often run.
    Column("order_id", String(200), primary_key=True),
    Column("member_id", String(200), nullable=False),
    Column("points", Points, nullable=False),
    Column("reason", String(64), nullable=False),  # a reason code: points.insufficient, …
    Column("message", Text, nullable=False),
    Column("event_id", String(200)),
    Column("refused_at", UtcDateTime(), nullable=False),  # when the order was paid
    Column("recorded_at", UtcDateTime(), nullable=False),
    Index("ix_points_refusals_member", "member_id", "refused_at"),
    Index("ix_points_refusals_refused_at", "refused_at"),
)
