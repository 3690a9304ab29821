"""Event ingest throughput, side by side with the raw-insert limit of the same database.

In one run, on a fresh PostgreSQL database (created on the server, dropped at the end):

* ``ingest``: N ``order.paid`` events as JSON lines through ``ingest_lines`` - the real path
  (parse, validate, de-duplicate, store, project, dispatch to every subscribed handler);
* ``raw COPY`` and ``raw executemany``: the same events' rows written straight into the same
  ``events`` and ``orders`` tables with psycopg 3 (one COPY per table; one ``executemany`` per
  table in pipeline mode), into freshly truncated tables, in one transaction. Rows are built
  before the clock starts: this is what the database and the driver can absorb, nothing more;
* ``ingest`` on SQLite (a temporary file), for information.

The members who placed the orders are ingested first (timed, reported as setup, not compared).
Usage: ``python -m benchmarks.bench_ingest [--events 100000] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from benchmarks.datagen import ORDERS_PER_SCALE, event_rows, generate, order_rows, to_jsonl
from benchmarks.measure import (
    Measurement,
    ServerCpu,
    conninfo,
    describe_machine,
    stopwatch,
    temporary_database,
)
from core.db import get_engine
from core.events.handlers import HandlerRegistry
from core.events.intake import DEFAULT_BATCH_SIZE, Intake, ingest_lines

# describe_machine and temporary_database were first defined here; other benchmarks import them.
__all__ = ["describe_machine", "main", "temporary_database"]

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
RESULT_FILE = Path(__file__).resolve().parents[1] / "bench-results" / "ingest.json"
TARGET_EVENTS_PER_S = 5_000  # on PostgreSQL
TARGET_SHARE_OF_RAW = 0.25  # of the raw-insert rate measured in the same run
NOW = datetime(2026, 12, 1, tzinfo=UTC)  # the engine clock: just after the generated history
SOURCE = "bench"
JSONB_COLUMNS = frozenset({"data", "items", "coupon_codes"})
INGEST, COPY, EXECUTEMANY = "ingest orders", "raw COPY", "raw executemany"


class BenchmarkError(Exception):
    """Raised when a measured run did not do the work it claims to measure."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    lines = generate_lines(args.events, args.seed)
    name = f"bench_ingest_{os.getpid()}"
    with temporary_database(args.database_url, name) as pg_url:
        machine = describe_machine(pg_url)
        server = ServerCpu.for_url(args.database_url, name)
        results = run(lines, pg_url, server, batch_size=args.batch_size, sqlite=not args.no_sqlite)
    report = build_report(results, machine, args)
    print_report(report, Console(width=None if sys.stdout.isatty() else 110))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if args.check and not all(report["targets"].values()) else 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=100_000, help="order.paid events to ingest")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALTY_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a PostgreSQL database to create the benchmark's own one from (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite ingest")
    parser.add_argument("--output", type=Path, default=RESULT_FILE)
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Lines:
    members: list[str]
    orders: list[str]


def generate_lines(events: int, seed: int) -> Lines:
    """The members and ``events`` orders as JSON lines, and nothing else kept alive.

    Holding the generated dicts (over a million objects at 100,000 orders) makes every full
    garbage collection during ingest walk them: measured 550 instead of 350 µs of client CPU per
    event. The CLI reading a file holds none of that, so neither does the benchmark.
    """
    dataset = generate(events / ORDERS_PER_SCALE, seed)
    return Lines(list(to_jsonl(dataset.members)), list(to_jsonl(dataset.orders)))


def run(
    lines: Lines, pg_url: str, server: ServerCpu | None, *, batch_size: int, sqlite: bool
) -> list[Measurement]:
    """Every measurement of this benchmark, PostgreSQL first."""
    import worker  # every package's actors and event handlers, as in the worker process

    worker.import_actors()
    results = measure_ingest(get_engine(pg_url), lines, server, batch_size=batch_size)
    results.extend(measure_raw_inserts(pg_url, lines, server))
    if sqlite:
        with tempfile.TemporaryDirectory() as folder:
            lite = get_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
            results.extend(measure_ingest(lite, lines, None, batch_size=batch_size))
            lite.dispose()
    return results


def measure_ingest(
    engine: Engine, lines: Lines, server: ServerCpu | None, *, batch_size: int
) -> list[Measurement]:
    """Register the members (setup), then ingest the orders; both timed, only orders compared.

    No handler is subscribed: this is intake itself (the program's handlers are measured beside
    it by ``benchmarks.bench_ingest_program``)."""
    intake = Intake(
        engine=engine, now=NOW, source=SOURCE, batch_size=batch_size, registry=HandlerRegistry()
    )
    return [
        _timed_ingest("setup: members", lines.members, intake, server),
        _timed_ingest(INGEST, lines.orders, intake, server),
    ]


def _timed_ingest(
    name: str, lines: list[str], intake: Intake, server: ServerCpu | None
) -> Measurement:
    with stopwatch(server) as watch:
        report = ingest_lines(lines, intake)
    if report.accepted != len(lines):
        raise BenchmarkError(
            f"{name}: {report.as_dict()} of {len(lines)} lines; "
            f"first rejection: {report.rejections[:1]}"
        )
    return Measurement(name, intake.engine.dialect.name, len(lines), **vars(watch.timing))


Rows = dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]
Writer = Callable[[psycopg.Connection[Any], str, tuple[str, ...], list[tuple[Any, ...]]], None]


def measure_raw_inserts(pg_url: str, lines: Lines, server: ServerCpu | None) -> list[Measurement]:
    """COPY, then executemany, of the rows ingest wrote for the orders, into emptied tables."""
    rows = raw_rows(lines.orders)
    with psycopg.connect(conninfo(pg_url)) as conn:
        return [
            measure_raw(COPY, conn, rows, copy_rows, server),
            measure_raw(EXECUTEMANY, conn, rows, insert_rows, server),
        ]


def raw_rows(lines: list[str]) -> Rows:
    """The rows ingest writes to ``events`` and ``orders``, as tuples psycopg adapts directly."""
    orders = [json.loads(line) for line in lines]
    stored = event_rows(orders, source=SOURCE, received_at=NOW)
    return {"events": _tuples(list(stored)), "orders": _tuples(list(order_rows(orders)))}


def _tuples(rows: list[dict[str, Any]]) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    columns = tuple(rows[0])
    wrapped = [tuple(Jsonb(v) if c in JSONB_COLUMNS else v for c, v in row.items()) for row in rows]
    return columns, wrapped


def measure_raw(
    name: str,
    conn: psycopg.Connection[Any],
    rows: Rows,
    write: Writer,
    server: ServerCpu | None,
) -> Measurement:
    """Write every table's rows with ``write`` in one transaction, into emptied tables."""
    conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, rows))))
    conn.commit()
    with stopwatch(server) as watch:
        for table, (columns, values) in rows.items():
            write(conn, table, columns, values)
        conn.commit()
    expected = len(rows["orders"][1])
    count = conn.execute("SELECT count(*) FROM orders").fetchone()
    if count is None or count[0] != expected:
        raise BenchmarkError(f"{name}: orders holds {count} rows, expected {expected}")
    return Measurement(name, "postgresql", expected, **vars(watch.timing))


def copy_rows(
    conn: psycopg.Connection[Any],
    table: str,
    columns: tuple[str, ...],
    values: list[tuple[Any, ...]],
) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for row in values:
            copy.write_row(row)


def insert_rows(
    conn: psycopg.Connection[Any],
    table: str,
    columns: tuple[str, ...],
    values: list[tuple[Any, ...]],
) -> None:
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    with conn.pipeline(), conn.cursor() as cursor:
        cursor.executemany(statement, values)


def build_report(
    results: list[Measurement], machine: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """The machine-readable result: every measurement, the ratios and the targets met."""
    pg = {m.name: m for m in results if m.database == "postgresql"}
    ingest, copy, many = (pg[name].events_per_s for name in (INGEST, COPY, EXECUTEMANY))
    return {
        "benchmark": "ingest",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": args.events,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "machine": {**machine, "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "results": [m.as_dict() for m in results],
        "ratios": {
            "ingest_vs_copy": round(ingest / copy, 3),
            "ingest_vs_executemany": round(ingest / many, 3),
        },
        # The same comparison in CPU per event (client + server): barely moved by other load.
        "cpu_ratios": _cpu_ratios(pg),
        "targets": {
            f"ingest >= {TARGET_EVENTS_PER_S} events/s": ingest >= TARGET_EVENTS_PER_S,
            "ingest >= 1/4 of raw COPY": ingest >= TARGET_SHARE_OF_RAW * copy,
            "ingest >= 1/4 of raw executemany": ingest >= TARGET_SHARE_OF_RAW * many,
        },
    }


def _cpu_ratios(pg: dict[str, Measurement]) -> dict[str, float] | None:
    ingest, copy, many = (pg[name].cpu_us_per_event() for name in (INGEST, COPY, EXECUTEMANY))
    if ingest is None or copy is None or many is None:
        return None
    return {
        "ingest_vs_copy": round(copy / ingest, 3),
        "ingest_vs_executemany": round(many / ingest, 3),
        "ingest_events_per_cpu_second": round(1e6 / ingest),
    }


COLUMNS = (
    "measurement",
    "database",
    "events",
    "seconds",
    "events/s",
    "client µs/ev",
    "server µs/ev",
)


def print_report(report: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"ingest: {report['events']:,} order.paid events, batch {report['batch_size']:,}",
        caption="CPU per event of this process and of the PostgreSQL backends (local server only)",
    )
    for column in COLUMNS:
        left = column in ("measurement", "database")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)
    for m in report["results"]:
        client, server = (m[key] for key in ("client_cpu_seconds", "server_cpu_seconds"))
        table.add_row(
            m["name"],
            m["database"],
            f"{m['events']:,}",
            f"{m['seconds']:.2f}",
            f"{m['events_per_s']:,.0f}",
            f"{client / m['events'] * 1e6:.0f}",
            "-" if server is None else f"{server / m['events'] * 1e6:.0f}",
        )
    console.print(table)
    for label, ratios in (("events/s", report["ratios"]), ("CPU/event", report["cpu_ratios"])):
        if ratios:
            console.print(
                f"by {label}: ingest / raw COPY = {ratios['ingest_vs_copy']:.2f}, "
                f"ingest / raw executemany = {ratios['ingest_vs_executemany']:.2f}"
            )
    for target, met in report["targets"].items():
        console.print(f"  {'[green]met[/]' if met else '[red]MISSED[/]'}  {target}")
    _print_machine(report["machine"], console)


def _print_machine(machine: dict[str, Any], console: Console) -> None:
    console.print(
        f"[dim]{machine['nproc']} × {machine['cpu_model']}, {machine['ram_gib']} GiB, "
        f"Python {machine['python']}, PostgreSQL {machine['postgresql']}, "
        f"load {machine['load_average_1m_at_start']} at start, "
        f"{machine['load_average_1m_at_end']} at end[/]"
    )


if __name__ == "__main__":
    raise SystemExit(main())
