"""The pool pings a PostgreSQL connection only after it sat idle (core.db._ping_when_idle):
a connection the server dropped while idle is replaced, a busy one is used without a ping."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from core import db


def _pooled_backend(engine: Engine) -> int:
    """The backend of the one connection now in the (fresh) pool."""
    engine.dispose()
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(engine: Engine, pid: int) -> None:
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_dropped_while_idle_is_replaced(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = _pooled_backend(pg_engine)
    _terminate(pg_engine, dead)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it sat idle long enough
    with pg_engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != dead


def test_without_the_ping_the_dropped_connection_is_handed_out(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above can fail: a connection returned just now is not pinged."""
    dead = _pooled_backend(pg_engine)
    _terminate(pg_engine, dead)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    with pytest.raises(OperationalError), pg_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    with pg_engine.connect() as conn:  # SQLAlchemy invalidated it: the next one is fresh
        assert conn.execute(text("SELECT 1")).scalar_one() == 1


@pytest.mark.parametrize(("idle_after", "pings"), [(3600.0, 0), (0.0, 1)])
def test_only_an_idle_connection_is_pinged(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch, idle_after: float, pings: int
) -> None:
    _pooled_backend(pg_engine)
    calls: list[object] = []
    ping = pg_engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        calls.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(pg_engine.dialect, "do_ping", counted)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", idle_after)
    with pg_engine.connect() as conn:
        conn.execute(text("SELECT 2"))
    assert len(calls) == pings


def test_an_idle_connection_is_left_outside_a_transaction(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ping's own transaction is ended, so an autocommit checkout can follow it."""
    _pooled_backend(pg_engine)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    with pg_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert conn.execute(text("SELECT 3")).scalar_one() == 3
