"""Tables of the coupons package: codes (the wallets), per-coupon counters, per-member uses.

Once-only and every limit are enforced here, by keys and conditional updates:

* ``coupon_codes``: one row per code (primary key); a status moves issued → reserved →
  redeemed only through ``UPDATE … WHERE status = <expected>``, so one caller wins a code.
  ``issue_key`` is unique: issuing again with the same key returns the first code.
* ``coupon_counters``: one row per coupon, ``used`` and ``spent_cents`` (discount money) of
  live reservations and redemptions, raised only by ``UPDATE … WHERE used < :total AND
  spent_cents + :d <= :budget``.
* ``coupon_member_uses``: ``per_member`` slots per (coupon, member); a use takes a slot that is
  free or whose use is older than ``per_member_period``, by a conditional update.
* ``coupon_refusals``: a code on a paid order that was not redeemed, with the reason code and
  params (rendered in the member's locale when shown); one row per (order, code), so a
  retried or replayed order records it once.
* ``checkout_reservations``: what one ``reserve`` call of the HTTP API holds for an order (its
  codes with their discounts, the points loyalty holds) under an id the shop releases it by;
  reserving again for the order closes the previous one.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table

from core.db import JsonDocument, Money, UtcDateTime, metadata

coupon_codes = Table(
    "coupon_codes",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("coupon_id", String(64), nullable=False),
    # NULL: a generated code nobody has claimed yet (the first member to use it claims it).
    Column("member_id", String(200)),
    Column("status", String(16), nullable=False),
    Column("issue_key", String(200), unique=True),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime()),
    Column("order_id", String(200)),
    Column("reserved_until", UtcDateTime()),
    Column("discount", Money()),
    Column("redeemed_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_coupon_codes_member", "member_id", "status"),
    Index("ix_coupon_codes_order", "order_id"),
    Index("ix_coupon_codes_due", "status", "expires_at"),
    Index("ix_coupon_codes_held", "status", "reserved_until"),
)

coupon_counters = Table(
    "coupon_counters",
    metadata,
    Column("coupon_id", String(64), primary_key=True),
    Column("used", Integer, nullable=False),
    # Whole cents, not Money: SQLite sums NUMERIC as floating point, and the budget check
    # ``spent + :d <= :budget`` must be exact on both databases.
    Column("spent_cents", BigInteger, nullable=False),
)

coupon_member_uses = Table(
    "coupon_member_uses",
    metadata,
    Column("coupon_id", String(64), primary_key=True),
    Column("member_id", String(200), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("code", String(32)),
    Column("used_at", UtcDateTime()),
    Index("ix_coupon_member_uses_code", "code"),
)

coupon_refusals = Table(
    "coupon_refusals",
    metadata,
    Column("order_id", String(200), primary_key=True),
    # The code as normalised, or the text as given (clipped) when it cannot be a code.
    Column("code", String(64), primary_key=True),
    Column("member_id", String(200), nullable=False),
    Column("coupon_id", String(64)),
    Column("reason", String(64), nullable=False),
    Column("params", JsonDocument, nullable=False),
    Column("event_id", String(200)),
    # When the order was paid: the moment the code was judged at.
    Column("refused_at", UtcDateTime(), nullable=False),
    Index("ix_coupon_refusals_member", "member_id", "refused_at"),
    Index("ix_coupon_refusals_refused_at", "refused_at"),
)

checkout_reservations = Table(
    "checkout_reservations",
    metadata,
    Column("reservation_id", String(40), primary_key=True),
    Column("order_id", String(200), nullable=False),
    Column("member_id", String(200), nullable=False),
    Column("codes", JsonDocument, nullable=False),  # {code: discount share as a string}
    Column("discount", Money(), nullable=False),
    Column("points", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("points_value", Money(), nullable=False),
    Column("held_until", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # Set by a release, or when a newer reservation of the same order replaced this one.
    Column("released_at", UtcDateTime()),
    Index("ix_checkout_reservations_order", "order_id"),
)
