"""Bring a database to the newest schema with Alembic, safely when many processes start at once."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number works; it only has to be the same in every process of this engine.
_PG_LOCK_ID = 7_201_311
# Alembic keeps the running migration in module globals (alembic.op, alembic.context), so two
# threads migrating at once, even different databases, run each other's steps: one at a time.
_IN_PROCESS = threading.RLock()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the project's migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revisions() -> set[str]:
    """Every branch head: each package keeps its own branch of migrations off the foundation."""
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Migrate to ``revision``; a no-op when already there. PostgreSQL serialises concurrent
    starters with an advisory lock so two workers never run the same migration twice."""
    with engine.connect() as conn:
        if revision == "heads" and current_revisions(conn) == head_revisions():
            return
    with _IN_PROCESS, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    with _IN_PROCESS, engine.begin() as conn:
        command.downgrade(alembic_config(conn), revision)
