"""Reading and writing members' current tiers (other packages read tiers only through here),
and recording tier changes: the new tier, a history row and a ``tier.changed`` event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from core.db import bulk_insert, upsert
from core.events.handlers import HandlerContext
from core.events.internal import internal_event
from core.events.types import Event
from loyalty.ladder import TierChange
from loyalty.tables import member_tiers, tier_history


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


def upsert_tiers(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Write many members' tier rows (one each) in one statement."""
    if not rows:
        return
    changes = [name for name in rows[0] if name != "member_id"]
    bulk_insert(conn, member_tiers, rows, conflict_keys=["member_id"], update_columns=changes)


def record_tier_changes(ctx: HandlerContext, changes: Sequence[TierChange]) -> None:
    """Move members to their new tiers, keep the history, tell campaigns (``tier.changed``)."""
    if not changes:
        return
    final = {change.member_id: change for change in changes}  # the last change of each member
    upsert_tiers(ctx.conn, [_tier_row(change, ctx.now) for change in final.values()])
    bulk_insert(ctx.conn, tier_history, [_history_row(change) for change in changes])
    ctx.emit([_changed_event(change) for change in changes])


def _tier_row(change: TierChange, now: datetime) -> dict[str, Any]:
    return {
        "member_id": change.member_id,
        "tier_id": change.to_tier,
        "qualifying_spend": change.spend,
        "since": change.at,
        "below_since": None,
        "updated_at": now,
    }


def _history_row(change: TierChange) -> dict[str, Any]:
    return {
        "member_id": change.member_id,
        "from_tier": change.from_tier,
        "to_tier": change.to_tier,
        "direction": change.direction,
        "qualifying_spend": change.spend,
        "changed_at": change.at,
        "cause": change.cause,
    }


def _changed_event(change: TierChange) -> Event:
    """``tier.changed``; its id names the cause, so a rerun emits nothing new."""
    return internal_event(
        event_id=f"tier.changed:{change.member_id}:{change.cause}:{change.to_tier}",
        type="tier.changed",
        member_id=change.member_id,
        occurred_at=change.at,
        data={
            "direction": change.direction,
            "from": change.from_tier,
            "to": change.to_tier,
            "qualifying_spend": str(change.spend),
            "cause": change.cause,
        },
    )


def fetch_tier_row(conn: Connection, member_id: str) -> Any:
    return conn.execute(select(member_tiers).where(member_tiers.c.member_id == member_id)).first()


def fetch_history(conn: Connection, member_id: str) -> list[dict[str, Any]]:
    query = (
        select(tier_history)
        .where(tier_history.c.member_id == member_id)
        .order_by(tier_history.c.changed_at, tier_history.c.id)
    )
    return [
        {
            "from": r.from_tier,
            "to": r.to_tier,
            "direction": r.direction,
            "qualifying_spend": str(r.qualifying_spend),
            "at": r.changed_at,
            "cause": r.cause,
        }
        for r in conn.execute(query)
    ]
