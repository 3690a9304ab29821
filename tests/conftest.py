"""Fixtures for every test: real PostgreSQL and Redis (never skipped), SQLite in a temp dir.

PostgreSQL gets one fresh database per test process (created here, dropped at the end); tables
are emptied before each test that asks for a database. Redis tests use database 9, flushed
before each test. If either server is down the test fails, saying how to start it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, create_engine, text

from core.clock import SystemClock, set_clock
from core.db import dispose_engines, get_engine
from core.runtime import set_runtime
from core.schema import metadata

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = PROJECT_ROOT / "examples"
PG_ADMIN_URL = os.environ.get(
    "LOYALTY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# One Redis database per xdist worker (gw0 → 9, gw1 → 10, …) so parallel tests never share one.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
REDIS_URL = os.environ.get("LOYALTY_TEST_REDIS", f"redis://127.0.0.1:6379/{9 + _WORKER}")

START_PG = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


@pytest.fixture(scope="session")
def examples() -> Path:
    """The project's own example (the Tea House): ``program/`` and ``events/scenario.jsonl``."""
    return EXAMPLES


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test process."""
    name = f"loyalty_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the message must tell the operator what to do
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc}); start it: {START_PG}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    dispose_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _empty_tables(engine: Engine) -> None:
    names = [t.name for t in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on the embedded default and on production's database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'loyalty.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url: str) -> Engine:
    engine = get_engine(db_url)
    _empty_tables(engine)
    return engine


@pytest.fixture
def pg_engine(pg_url: str) -> Engine:
    engine = get_engine(pg_url)
    _empty_tables(engine)
    return engine


@pytest.fixture
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); start it: {START_REDIS}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Each test starts on the wall clock with no cached runtime."""
    set_clock(SystemClock())
    set_runtime(None)
    yield
    set_clock(SystemClock())
    set_runtime(None)


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    engine: Engine,
    tmp_path: Path,
    examples: Path,
) -> Path:
    """The CLI as a shop runs it: the example program, this test's database, no Redis."""
    monkeypatch.setenv("LOYALTY_DATABASE_URL", db_url)
    monkeypatch.delenv("LOYALTY_REDIS_URL", raising=False)
    monkeypatch.setenv("LOYALTY_PROGRAM_DIR", str(examples / "program"))
    monkeypatch.chdir(tmp_path)
    return tmp_path
