"""``campaigns pause|resume``: an emergency stop stored in the database, winning over the file.

A paused campaign enrols no one and its journeys hold at their next step. Resuming makes the
held journeys due at once (their steps fell due while paused), and they continue from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, select, update

from campaigns.tables import controls, journeys
from core.db import upsert

Status = Literal["active", "paused"]


def write_first(conn: Connection) -> None:
    """On SQLite, take the database's write lock before this transaction reads: a transaction
    that read first and writes after another one committed fails at once ("database is locked",
    no busy wait), where one that writes first waits its turn. PostgreSQL locks rows instead."""
    if conn.dialect.name == "sqlite":
        conn.execute(update(controls).where(controls.c.campaign_id == "").values(note=None))


def fetch_controls(conn: Connection) -> dict[str, str]:
    """Campaign id → the status set by ``campaigns pause|resume``."""
    rows = conn.execute(select(controls.c.campaign_id, controls.c.status))
    return {campaign_id: status for campaign_id, status in rows}


def effective_status(campaign: Any, overrides: Mapping[str, str]) -> str:
    """The database's word if there is one, else the file's ``status``."""
    return overrides.get(campaign.id, campaign.status)


def paused_ids(conn: Connection, campaigns: Mapping[str, Any]) -> set[str]:
    overrides = fetch_controls(conn)
    return {
        campaign_id
        for campaign_id, campaign in campaigns.items()
        if effective_status(campaign, overrides) == "paused"
    }


def set_status(
    conn: Connection, campaign_id: str, status: Status, *, now: datetime, note: str | None = None
) -> int:
    """Store the status; on resume, make held journeys due now. Returns the journeys made due."""
    values = {"campaign_id": campaign_id, "status": status, "changed_at": now, "note": note}
    upsert(conn, controls, keys=["campaign_id"], values=values)
    if status == "paused":
        return 0
    held = conn.execute(
        update(journeys)
        .where(
            journeys.c.campaign_id == campaign_id,
            journeys.c.status == "active",
            journeys.c.next_run_at < now,
        )
        .values(next_run_at=now, updated_at=now)
    )
    return held.rowcount or 0
