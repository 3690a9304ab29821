"""What every benchmark needs: a throwaway PostgreSQL database, a stopwatch that also counts CPU
time, and a description of the machine the numbers came from.

The machines these run on are often shared. Wall-clock rates then move with other people's
work, so each measurement also records the CPU seconds spent by this process and, when the
server is local, by the PostgreSQL backends serving the benchmark's database: CPU per event
hardly moves with load, and says where the time goes.
"""

from __future__ import annotations

import gc
import os
import platform
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from core.db import dispose_engines, normalise_url

LOCAL_HOSTS = frozenset({None, "", "localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Measurement:
    """One timed run: wall ``seconds``, CPU of this process, CPU of the database server."""

    name: str
    database: str
    events: int
    seconds: float
    client_cpu_seconds: float
    server_cpu_seconds: float | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    def cpu_us_per_event(self) -> float | None:
        """Client plus server CPU per event; None when the server's CPU is not known."""
        if self.server_cpu_seconds is None:
            return None
        return (self.client_cpu_seconds + self.server_cpu_seconds) / self.events * 1e6

    def as_dict(self) -> dict[str, Any]:
        rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}
        cpu = self.cpu_us_per_event()
        return {
            **rounded,
            "events_per_s": round(self.events_per_s, 1),
            "cpu_us_per_event": None if cpu is None else round(cpu, 1),
        }


@dataclass(frozen=True)
class Timing:
    seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    server_cpu_seconds: float | None = None


class Stopwatch:
    """Filled in when the ``stopwatch`` block ends."""

    timing = Timing()


@contextmanager
def stopwatch(server: ServerCpu | None = None) -> Iterator[Stopwatch]:
    """Time the block: wall clock, this process's CPU and, if given, the server's CPU."""
    gc.collect()  # garbage left by the previous step is not this step's cost
    watch = Stopwatch()
    before = server.read() if server else {}
    wall, cpu = time.perf_counter(), time.process_time()
    yield watch
    seconds, cpu = time.perf_counter() - wall, time.process_time() - cpu
    used = server.used_since(before) if server else None
    watch.timing = Timing(seconds, cpu, used)


@dataclass(frozen=True)
class ServerCpu:
    """CPU seconds of the local PostgreSQL backends connected to one database (from /proc)."""

    admin_url: str
    database: str

    @classmethod
    def for_url(cls, admin_url: str, database: str) -> ServerCpu | None:
        """None unless the server runs on this machine and /proc can be read."""
        local = make_url(normalise_url(admin_url)).host in LOCAL_HOSTS
        return cls(admin_url, database) if local and Path("/proc/self/stat").exists() else None

    def read(self) -> dict[int, float]:
        with psycopg.connect(conninfo(self.admin_url), autocommit=True) as conn:
            query = "SELECT pid FROM pg_stat_activity WHERE datname = %s"
            pids = [row[0] for row in conn.execute(query, (self.database,))]
        return {pid: seconds for pid in pids if (seconds := _process_cpu(pid)) is not None}

    def used_since(self, before: dict[int, float]) -> float:
        # A backend that started during the block counts from zero.
        return sum(now - before.get(pid, 0.0) for pid, now in self.read().items())


def _process_cpu(pid: int) -> float | None:
    proc = Path(f"/proc/{pid}")
    try:
        if proc.joinpath("comm").read_text().strip() != "postgres":
            return None
        fields = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@contextmanager
def temporary_database(server_url: str, name: str | None = None) -> Iterator[str]:
    """A new, empty database on ``server_url``'s server (``name``, else ``bench_<pid>``); its
    URL is yielded and it is dropped afterwards."""
    name = name or f"bench_{os.getpid()}"
    _admin(server_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(normalise_url(server_url)).set(database=name).render_as_string(False)
    finally:
        dispose_engines()
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        _admin(server_url, drop.format(sql.Identifier(name)))


def _admin(server_url: str, statement: sql.Composed) -> None:
    with psycopg.connect(conninfo(server_url), autocommit=True) as conn:
        conn.execute(statement)


def vacuum_analyze(engine: Engine) -> float:
    """``VACUUM ANALYZE`` the engine's database, as autovacuum would have after a benchmark's
    seeding (this machine's PostgreSQL runs with autovacuum off: never analysed, a seeded
    table keeps the planner's guess of a few pages); returns the seconds it took."""
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return round(time.perf_counter() - started, 2)


def conninfo(url: str) -> str:
    """The URL as libpq takes it (without SQLAlchemy's ``+psycopg``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def describe_machine(pg_url: str) -> dict[str, Any]:
    """What the numbers were measured on."""
    with psycopg.connect(conninfo(pg_url)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        autovacuum = conn.execute("SHOW autovacuum").fetchone()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name"),
        "ram_gib": round(int(_proc_field("/proc/meminfo", "MemTotal").split()[0]) / 2**20, 1),
        # Other work on the machine slows wall-clock rates; the load says how much there was.
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "postgresql": row[0] if row else "unknown",
        "postgresql_autovacuum": autovacuum[0] if autovacuum else "unknown",
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "packages": {name: version(name) for name in ("sqlalchemy", "psycopg", "pydantic")},
    }


def _proc_field(path: str, field: str) -> str:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return "unknown"
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == field:
            return value.strip()
    return "unknown"
