"""Tables of the loyalty package: tiers (more to come: points ledger, lots, referrals)."""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table

from core.db import Money, UtcDateTime, metadata

member_tiers = Table(
    "member_tiers",
    metadata,
    Column("member_id", String(200), primary_key=True),
    Column("tier_id", String(64), nullable=False),
    Column("qualifying_spend", Money(), nullable=False),
    Column("since", UtcDateTime(), nullable=False),
    # Set while the member's spend is below their tier; the downgrade waits out the grace period.
    Column("below_since", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_member_tiers_tier", "tier_id"),
)
