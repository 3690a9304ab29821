"""Small pieces of engine state kept in the database: how far ``tick`` has run, job firings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Connection, String, Table, Text, select

from core.db import UtcDateTime, insert_ignoring_conflicts, metadata

engine_state = Table(
    "engine_state",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

job_firings = Table(
    "job_firings",
    metadata,
    Column("job_id", String(200), primary_key=True),
    Column("fire_time", UtcDateTime(), primary_key=True),
    Column("claimed_at", UtcDateTime(), nullable=False),
    Column("claimed_by", String(200), nullable=False),
)


def get_value(conn: Connection, key: str) -> str | None:
    return conn.execute(select(engine_state.c.value).where(engine_state.c.key == key)).scalar()


def set_value(conn: Connection, key: str, value: str) -> None:
    updated = conn.execute(
        engine_state.update().where(engine_state.c.key == key).values(value=value)
    ).rowcount
    if not updated:
        conn.execute(engine_state.insert().values(key=key, value=value))


def claim_firing(
    conn: Connection, *, job_id: str, fire_time: datetime, now: datetime, owner: str
) -> bool:
    """Claim one firing of a job; True for exactly one claimant however many schedulers race."""
    stmt = insert_ignoring_conflicts(conn, job_firings, ["job_id", "fire_time"]).values(
        job_id=job_id, fire_time=fire_time, claimed_at=now, claimed_by=owner
    )
    return conn.execute(stmt.returning(job_firings.c.job_id)).first() is not None
