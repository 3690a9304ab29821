"""Reading and writing members' current tiers (other packages read tiers only through here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, select

from core.db import upsert
from loyalty.tables import member_tiers


def fetch_tiers(conn: Connection, member_ids: Sequence[str], *, default: str) -> dict[str, str]:
    """Each member's current tier id; members never tiered hold ``default`` (the lowest)."""
    if not member_ids:
        return {}
    query = select(member_tiers.c.member_id, member_tiers.c.tier_id).where(
        member_tiers.c.member_id.in_(list(member_ids))
    )
    found = dict(conn.execute(query).all())
    return {member_id: found.get(member_id, default) for member_id in member_ids}


def write_tier(
    conn: Connection,
    member_id: str,
    tier_id: str,
    *,
    qualifying_spend: Decimal,
    now: datetime,
) -> None:
    """Set a member's tier (used by the tier rules, and by tests that need a tiered member)."""
    values = {
        "member_id": member_id,
        "tier_id": tier_id,
        "qualifying_spend": qualifying_spend,
        "since": now,
        "below_since": None,
        "updated_at": now,
    }
    upsert(conn, member_tiers, keys=["member_id"], values=values)
