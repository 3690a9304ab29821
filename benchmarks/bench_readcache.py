"""What migration 0013's change notifications cost: writers, with the triggers and without them
(``ALTER TABLE … DISABLE TRIGGER USER``, enabled again after), in the same run, alternating
(with, without; then without, with; …) so drift of the machine falls on both sides alike.

* ``bulk update``: one UPDATE of ``--lots`` points_lots rows of ``--members`` members, the
  shape of the expiry job's statement (more than 8,000 members: one ``*`` notification).
* ``single-row inserts``: ``--inserts`` single-row INSERTs into points_lots in one transaction
  (prepared, one member each): the cost per statement of one trigger call and one pg_notify.
* ``concurrent writers``: ``--writers`` connections, each ``--commits`` single-row INSERT +
  COMMIT: transactions a second, with PostgreSQL's commit-time queueing of notifications.
* ``ingest``: a batch of ``--batch`` ``order.paid`` events of the seeded shop's members through
  ``core.events.intake.ingest`` (every handler), triggers on or off on every watched table.
* ``listener``: a started :class:`core.readcache.ReadCache` applying ``--notifications``
  notifications of ``--keys`` keys each, sent in one transaction; ``barrier()`` says when.

Each run records wall seconds, this process's CPU and the CPU of the PostgreSQL backends of the
database (a listener counting the notifications is one of them, as a serve worker's would be);
the ratios are of the medians' wall seconds and of the runs' summed PostgreSQL CPU.
Usage: ``python -m benchmarks.bench_readcache [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from benchmarks.http_load import order_batch
from benchmarks.http_shop import set_up
from benchmarks.measure import (
    ServerCpu,
    Timing,
    conninfo,
    describe_machine,
    stopwatch,
    temporary_database,
)
from core.db import get_engine
from core.events.intake import Intake, ingest
from core.readcache import CHANNEL, WATCHED, ReadCache

RESULT_FILE = Path(__file__).resolve().parents[1] / "bench-results" / "readcache.json"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
FULL = {"lots": 100_000, "members": 20_000, "runs": 9, "inserts": 5_000, "writers": 4,
        "commits": 1_000, "batch": 500, "shop_members": 1_000, "notifications": 20_000,
        "keys": 100}  # fmt: skip
QUICK = {"lots": 2_000, "members": 400, "runs": 2, "inserts": 50, "writers": 2, "commits": 20,
         "batch": 20, "shop_members": 30, "notifications": 100, "keys": 10}  # fmt: skip
INSERT_LOT = (
    "INSERT INTO points_lots (member_id, entry_id, points, remaining, available_at)"
    " VALUES (%s, 0, 10, 10, now())"
)
# Reversible, so every run updates the same rows the same way; the columns the expiry job sets.
SWAP_LOTS = (
    "UPDATE points_lots SET expired_points = remaining, remaining = expired_points,"
    " expired_at = CASE WHEN expired_at IS NULL THEN now() END WHERE member_id LIKE 'lot-%'"
)
SEED_LOTS = (
    "INSERT INTO points_lots (member_id, entry_id, points, remaining, expired_points,"
    " available_at, expires_at) SELECT 'lot-' || (i %% %(members)s::bigint), i, 100, 100, 0,"
    " now() - interval '400 days', now() - interval '35 days'"
    " FROM generate_series(1, %(lots)s::bigint) AS i"
)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    load_at_start = os.getloadavg()
    name = f"bench_readcache_{os.getpid()}"
    with tempfile.TemporaryDirectory() as work, temporary_database(args.database_url, name) as url:
        machine = describe_machine(url)
        bench = Bench(url, ServerCpu.for_url(args.database_url, name), args)
        try:
            results = bench.run_all(Path(work))
        finally:
            bench.close()
    machine["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    machine["load_average_5m_at_start"] = round(load_at_start[1], 2)
    report = build_report(results, machine, args)
    print_report(report, Console(width=150))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_readcache",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    for option, default in FULL.items():
        parser.add_argument(f"--{option.replace('_', '-')}", type=int, help=f"default {default}")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALTY_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a PostgreSQL server to create the benchmark's own database on",
    )
    parser.add_argument("--output", type=Path, default=RESULT_FILE)
    # `python -m benchmarks ARGS` passes the same arguments to every benchmark: ignore theirs.
    args = parser.parse_known_args(argv)[0]
    sizes = QUICK if args.quick else FULL
    for option, default in sizes.items():
        if getattr(args, option) is None:
            setattr(args, option, default)
    return args


class Counter:
    """Listens on the channel on a connection of its own; ``drain()`` counts what came since."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(conninfo(url), autocommit=True)
        self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))

    def drain(self) -> dict[str, int]:
        marker = uuid.uuid4().hex  # its own notification comes back after everything before it
        self.conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, marker))
        counts = {"notifications": 0, "everything": 0, "bytes": 0}
        for notify in self.conn.notifies(timeout=60.0):
            if notify.payload == marker:
                return counts
            counts["notifications"] += 1
            counts["everything"] += notify.payload == "*"
            counts["bytes"] += len(notify.payload)
        raise RuntimeError("the counter's marker did not come back within 60 s")


class Bench:
    """The database, an admin connection that turns the triggers off and on, the counter,
    and the writers' connections: kept open, so their backends' CPU is counted (a backend gone
    when a stopwatch ends is not) and plans are reused as in a long-lived worker."""

    def __init__(self, url: str, server: ServerCpu | None, args: argparse.Namespace) -> None:
        self.url, self.server, self.args = url, server, args
        self.engine = get_engine(url)  # migrated: the triggers are in place
        self.admin = _connect(url)
        self.counter = Counter(url)
        self.writers = [_connect(url) for _ in range(max(1, args.writers))]

    def close(self) -> None:
        for conn in (self.counter.conn, self.admin, *self.writers):
            conn.close()
        self.engine.dispose()

    def run_all(self, work: Path) -> dict[str, Any]:
        seed_lots(self.admin, self.args)
        self.counter.drain()  # the seeding's own notification is no run's
        return {
            "bulk_update": self.bulk_update(),
            "single_row_inserts": self.single_row_inserts(),
            "concurrent_writers": self.concurrent_writers(),
            "ingest": self.ingest(work),
            "listener": measure_listener(self.url, self.args),
        }

    @contextmanager
    def triggers(self, tables: Sequence[str], *, on: bool) -> Iterator[None]:
        if not on:
            self._set_triggers(tables, "DISABLE")
        try:
            yield
        finally:
            if not on:
                self._set_triggers(tables, "ENABLE")

    def _set_triggers(self, tables: Sequence[str], action: str) -> None:
        for table in tables:
            statement = sql.SQL("ALTER TABLE {} {} TRIGGER USER")
            self.admin.execute(statement.format(sql.Identifier(table), sql.SQL(action)))

    def alternate(
        self,
        work: Callable[[int], None],
        *,
        tables: Sequence[str] = ("points_lots",),
        after: Callable[[], object] = lambda: None,
    ) -> dict[str, Any]:
        """``work(run)`` timed ``runs`` times with the triggers and as often without, in
        alternating order; after each, untimed, the notifications it sent are counted and
        ``after()`` runs."""
        runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        for index in range(self.args.runs):
            for on in (True, False) if index % 2 == 0 else (False, True):
                with self.triggers(tables, on=on), stopwatch(self.server) as watch:
                    work(2 * index + on)
                runs[on].append({**_timing(watch.timing), **self.counter.drain()})
                after()
        return {"with": _summary(runs[True]), "without": _summary(runs[False])}

    def bulk_update(self) -> dict[str, Any]:
        conn = self.writers[0]

        def work(_run: int) -> None:
            with conn.transaction():
                conn.execute(SWAP_LOTS)

        # Vacuumed after each run, so each finds the pages as the one before it did.
        found = self.alternate(work, after=lambda: self.admin.execute("VACUUM points_lots"))
        return {**found, "rows": self.args.lots, "members": self.args.members}

    def single_row_inserts(self) -> dict[str, Any]:
        n, conn = self.args.inserts, self.writers[0]

        def work(run: int) -> None:
            with conn.transaction():
                for i in range(n):
                    conn.execute(INSERT_LOT, (f"ins-{run}-{i}",), prepare=True)

        found = self.alternate(work)
        per = {side: found[side]["median_s"] / n * 1e6 for side in ("with", "without")}
        extra = {"us_per_statement": {side: round(us, 1) for side, us in per.items()}}
        return {**found, **extra, "statements": n}

    def concurrent_writers(self) -> dict[str, Any]:
        writers, commits = self.args.writers, self.args.commits
        found = self.alternate(lambda run: run_writers(self.writers, run, commits))
        total = writers * commits
        rates = {side: round(total / found[side]["median_s"], 1) for side in ("with", "without")}
        return {**found, "transactions_per_s": rates, "writers": writers, "commits": commits}

    def ingest(self, work: Path) -> dict[str, Any]:
        shop = set_up(self.engine, work, members=self.args.shop_members)
        size, now = self.args.batch, datetime.now(UTC)

        def one_batch(run: int) -> None:
            body = order_batch(shop.members, prefix=f"r{run}", first=0, size=size, now=now,
                               seed=run)  # fmt: skip
            report = ingest(orjson.loads(body), Intake(engine=self.engine, now=now,
                                                       program=shop.program))  # fmt: skip
            if report.accepted != size:
                raise RuntimeError(f"a batch accepted {report.accepted} of {size} events")

        one_batch(-1)  # warm: plans, pools, the program's caches
        self.counter.drain()
        found = self.alternate(one_batch, tables=[watched.table for watched in WATCHED])
        rates = {side: round(size / found[side]["median_s"], 1) for side in ("with", "without")}
        return {**found, "events_per_s": rates, "batch": size, "members": len(shop.members)}


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(conninfo(url), autocommit=True)


def seed_lots(conn: psycopg.Connection, args: argparse.Namespace) -> None:
    conn.execute(SEED_LOTS, {"members": args.members, "lots": args.lots})
    conn.execute("VACUUM ANALYZE points_lots")


def run_writers(connections: Sequence[psycopg.Connection], run: int, commits: int) -> None:
    """A thread per connection, each ``commits`` single-row INSERTs, each its transaction."""
    failures: list[BaseException] = []

    def write(conn: psycopg.Connection, writer: int) -> None:
        try:
            for i in range(commits):
                conn.execute(INSERT_LOT, (f"w-{run}-{writer}-{i}",), prepare=True)
        except BaseException as exc:  # reported by the caller, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(c, w)) for w, c in enumerate(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def measure_listener(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Notifications of ``keys`` keys each (half of them held by the cache), committed at
    once; timed from the commit until ``barrier()`` has seen every one applied."""
    rng, held = random.Random(7), 10_000
    payloads = [
        json.dumps([f"member:m-{rng.randrange(2 * held)}" for _ in range(args.keys)])
        for _ in range(args.notifications)
    ]
    with ReadCache[str](url, max_entries=held) as cache:
        _wait_until_live(cache)
        for i in range(held):
            cache.put(f"member:m-{i}", "a value", cache.ticket())
        with psycopg.connect(conninfo(url)) as sender:
            sender.execute(
                "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p", (CHANNEL, payloads)
            )
            wall, cpu = time.perf_counter(), time.process_time()
            sender.commit()
            passed = cache.barrier(timeout=600.0)
            seconds, cpu = time.perf_counter() - wall, time.process_time() - cpu
        stats = cache.stats()
    if not passed:
        raise RuntimeError("the read cache's barrier did not pass: the timing is void")
    return {
        "notifications": args.notifications,
        "keys_per_notification": args.keys,
        "payload_bytes": round(statistics.mean(len(p) for p in payloads)),
        "seconds": round(seconds, 4),
        "notifications_per_s": round(args.notifications / seconds, 1),
        "keys_per_s": round(args.notifications * args.keys / seconds, 1),
        "client_cpu_us_per_notification": round(cpu / args.notifications * 1e6, 1),
        "entries_dropped": stats["dropped"],
        "entries_left": stats["entries"],
    }


def _wait_until_live(cache: ReadCache[Any]) -> None:
    deadline = time.monotonic() + 10.0
    while not cache.live:
        if time.monotonic() > deadline:
            raise RuntimeError("the read cache did not start listening on PostgreSQL")
        time.sleep(0.01)


def _timing(timing: Timing) -> dict[str, Any]:
    server = timing.server_cpu_seconds
    return {
        "seconds": round(timing.seconds, 5),
        "client_cpu_s": round(timing.client_cpu_seconds, 5),
        "server_cpu_s": None if server is None else round(server, 5),
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    servers = [run["server_cpu_s"] for run in runs if run["server_cpu_s"] is not None]
    return {
        "median_s": round(statistics.median(run["seconds"] for run in runs), 5),
        "median_server_cpu_s": round(statistics.median(servers), 5) if servers else None,
        # /proc counts CPU in ticks of 10 ms: the sum of the runs is the finer measure
        "total_server_cpu_s": round(sum(servers), 5) if servers else None,
        "median_client_cpu_s": round(statistics.median(r["client_cpu_s"] for r in runs), 5),
        "notifications_per_run": max(run["notifications"] for run in runs),
        "everything_per_run": max(run["everything"] for run in runs),
        "runs": runs,
    }


def build_report(
    results: dict[str, Any], machine: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    ratios = {}
    for name in ("bulk_update", "single_row_inserts", "concurrent_writers", "ingest"):
        found = results[name]
        found["ratio"] = _ratio(found["with"]["median_s"], found["without"]["median_s"])
        found["server_cpu_ratio"] = _ratio(
            found["with"]["total_server_cpu_s"], found["without"]["total_server_cpu_s"]
        )
        ratios[name] = {"wall": found["ratio"], "server_cpu": found["server_cpu_ratio"]}
    return {
        "benchmark": "readcache",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": {option: getattr(args, option) for option in FULL},
        "machine": machine,
        "results": results,
        "ratios": ratios,  # with the triggers / without: above 1 is what they cost
    }


def _ratio(with_: float | None, without: float | None) -> float | None:
    return round(with_ / without, 3) if with_ and without else None


def print_report(report: dict[str, Any], console: Console) -> None:
    r = report["results"]
    table = Table(title="migration 0013's triggers: with / without (medians)")
    for column in ("measurement", "with", "without", "× wall", "× PG CPU", "notifications/run"):
        table.add_column(column, justify="left" if column == "measurement" else "right")
    units = {
        "bulk_update": ("ms", lambda f, s: f"{f[s]['median_s'] * 1e3:,.1f}"),
        "single_row_inserts": ("µs/stmt", lambda f, s: f"{f['us_per_statement'][s]:,.1f}"),
        "concurrent_writers": ("tx/s", lambda f, s: f"{f['transactions_per_s'][s]:,.0f}"),
        "ingest": ("events/s", lambda f, s: f"{f['events_per_s'][s]:,.0f}"),
    }
    for name, (unit, show) in units.items():
        found = r[name]
        table.add_row(
            f"{name.replace('_', ' ')} ({unit})", show(found, "with"), show(found, "without"),
            f"{found['ratio']}", f"{found['server_cpu_ratio']}",
            f"{found['with']['notifications_per_run']:,} ({found['with']['everything_per_run']} *)",
        )  # fmt: skip
    console.print(table)
    listener, m = r["listener"], report["machine"]
    console.print(
        f"listener: {listener['notifications_per_s']:,.0f} notifications/s of "
        f"{listener['keys_per_notification']} keys ({listener['keys_per_s']:,.0f} keys/s), "
        f"{listener['client_cpu_us_per_notification']} µs CPU each; load "
        f"{m['load_average_1m_at_start']} → {m['load_average_1m_at_end']} on {m['nproc']} CPUs"
    )


if __name__ == "__main__":
    raise SystemExit(main())
