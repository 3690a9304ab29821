"""Ingest with a program loaded, beside the same events with none, in one run.

Two fresh PostgreSQL databases get the same generated shop history (``benchmarks.datagen``):

* ``no program``: events stored and projected, no handler subscribed (what intake alone costs);
* ``program``: the same events with the example program loaded and every package's handlers
  subscribed, as ``loyalty-engine events ingest`` runs them: points, tier upgrades, referrals,
  coupon redemptions (and refusals), refund reconciliation, and the campaigns' event triggers
  and exits (journeys entered on ``member.registered`` and ``tier.changed``, ended on
  ``order.paid``; their first steps are enqueued to the in-process broker, not run);
* ``program without campaigns``: the same, with the campaigns' handler unsubscribed, to show
  what the campaigns add.

Members are ingested first (setup), then the ``order.paid`` events, then the ``order.refunded``
ones; orders and refunds are timed and compared. The program is ``../shared/examples/program``
when it sits beside the repo, else its copy in ``examples/home-goods``.
Usage: ``python -m benchmarks.bench_ingest_program [--events 20000] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.datagen import ORDERS_PER_SCALE, generate, to_jsonl
from benchmarks.measure import Measurement, ServerCpu, describe_machine, stopwatch
from benchmarks.measure import temporary_database as fresh_database
from core.db import get_engine
from core.events.handlers import HandlerRegistry, handlers
from core.events.intake import DEFAULT_BATCH_SIZE, Intake, ingest_lines

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = (
    ROOT.parent / "shared" / "examples" / "program",
    ROOT / "examples" / "home-goods" / "program",
)
RESULT_FILE = ROOT / "bench-results" / "ingest_program.json"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
TARGET_ORDERS_PER_S = 4_000
TARGET_REFUNDS_PER_S = 2_000
TARGET_RATIO = 0.5  # with a program / with none, for orders
TARGET_CAMPAIGN_ORDERS_PER_S = 3_000  # issue 9: with the full program, campaigns included
MODES = ("no program", "program without campaigns", "program")


class BenchmarkError(Exception):
    """Raised when a measured run did not do the work it claims to measure."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    program_dir = next((p for p in PROGRAMS if p.is_dir()), PROGRAMS[-1])
    dataset = generate(args.events / ORDERS_PER_SCALE, args.seed)
    lines = {
        "members": list(to_jsonl(dataset.members)),
        "orders": list(to_jsonl(dataset.orders)),
        "refunds": list(to_jsonl(dataset.refunds)),
    }
    del dataset
    results, machine = [], {}
    for mode in MODES:
        name = f"bench_program_{mode.replace(' ', '_')}_{os.getpid()}"
        with fresh_database(args.database_url, name) as pg_url:
            machine = describe_machine(pg_url)
            server = ServerCpu.for_url(args.database_url, name)
            results += measure(mode, pg_url, lines, server, program_dir, args.batch_size)
    report = build_report(results, machine, args, program_dir)
    print_report(report, Console(width=None if sys.stdout.isatty() else 110))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if args.check and not all(report["targets"].values()) else 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_ingest_program")
    parser.add_argument("--events", type=int, default=20_000, help="order.paid events")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALTY_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--output", type=Path, default=RESULT_FILE)
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    return parser.parse_known_args(argv)[0]


def measure(
    mode: str,
    pg_url: str,
    lines: dict[str, list[str]],
    server: ServerCpu | None,
    program_dir: Path,
    batch_size: int,
) -> list[Measurement]:
    import worker  # every package's actors and event handlers, as in the worker process
    from core.program.loader import load_program

    worker.import_actors()
    engine = get_engine(pg_url)
    handlers: dict[str, Any] = (
        {"program": load_program(program_dir)}
        if mode != "no program"
        else {"registry": HandlerRegistry()}
    )
    intake = Intake(engine=engine, now=NOW, source="bench", batch_size=batch_size, **handlers)
    with _campaigns_unsubscribed(mode == "program without campaigns"):
        measured = [_timed(f"{mode}: {kind}", lines[kind], intake, server) for kind in lines]
    engine.dispose()
    return measured


@contextmanager
def _campaigns_unsubscribed(unsubscribed: bool) -> Iterator[None]:
    """The campaigns' event handler out of the registry for the block (back, last, after)."""
    from campaigns.handlers import start_and_end_journeys
    from core.events.types import INTERNAL_EVENT_TYPES, SHOP_EVENT_TYPES

    if not unsubscribed:
        yield
        return
    handlers.unsubscribe(start_and_end_journeys)
    try:
        yield
    finally:
        handlers.subscribe(*sorted(SHOP_EVENT_TYPES | INTERNAL_EVENT_TYPES))(start_and_end_journeys)


def _timed(name: str, lines: list[str], intake: Intake, server: ServerCpu | None) -> Measurement:
    with stopwatch(server) as watch:
        report = ingest_lines(lines, intake)
    if report.accepted != len(lines) or report.tally("handler_failed"):
        raise BenchmarkError(f"{name}: {report.as_dict()} {dict(report.tallies)} of {len(lines)}")
    return Measurement(name, "postgresql", len(lines), **vars(watch.timing))


def build_report(
    results: list[Measurement], machine: dict[str, Any], args: argparse.Namespace, program: Path
) -> dict[str, Any]:
    rate = {m.name: m.events_per_s for m in results}
    orders, refunds = rate["program: orders"], rate["program: refunds"]
    ratio = orders / rate["no program: orders"]
    without_campaigns = rate["program without campaigns: orders"]
    return {
        "benchmark": "ingest_program",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": args.events,
        "program": str(program),
        "batch_size": args.batch_size,
        "machine": {**machine, "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "results": [m.as_dict() for m in results],
        "ratios": {
            "orders_program_vs_none": round(ratio, 3),
            "refunds_program_vs_none": round(refunds / rate["no program: refunds"], 3),
            "orders_program_vs_program_without_campaigns": round(orders / without_campaigns, 3),
        },
        "targets": {
            f"orders with the program >= {TARGET_ORDERS_PER_S}/s": orders >= TARGET_ORDERS_PER_S,
            f"refunds with the program >= {TARGET_REFUNDS_PER_S}/s": (
                refunds >= TARGET_REFUNDS_PER_S
            ),
            f"orders: program / none >= {TARGET_RATIO}": ratio >= TARGET_RATIO,
            f"orders with the program, campaigns included, >= {TARGET_CAMPAIGN_ORDERS_PER_S}/s": (
                orders >= TARGET_CAMPAIGN_ORDERS_PER_S
            ),
        },
    }


def print_report(report: dict[str, Any], console: Console) -> None:
    table = Table(title=f"ingest with and without a program: {report['events']:,} orders")
    for column in ("measurement", "events", "seconds", "events/s", "client µs/ev", "server µs/ev"):
        table.add_column(column, justify="left" if column == "measurement" else "right")
    for m in report["results"]:
        server = m["server_cpu_seconds"]
        table.add_row(
            m["name"],
            f"{m['events']:,}",
            f"{m['seconds']:.2f}",
            f"{m['events_per_s']:,.0f}",
            f"{m['client_cpu_seconds'] / m['events'] * 1e6:.0f}",
            "-" if server is None else f"{server / m['events'] * 1e6:.0f}",
        )
    console.print(table)
    ratios = report["ratios"]
    console.print(
        f"program / none: orders {ratios['orders_program_vs_none']:.2f}, "
        f"refunds {ratios['refunds_program_vs_none']:.2f}; program / program without campaigns:"
        f" orders {ratios['orders_program_vs_program_without_campaigns']:.2f}"
        f"  ({report['program']})"
    )
    for target, met in report["targets"].items():
        console.print(f"  {'[green]met[/]' if met else '[red]MISSED[/]'}  {target}")


if __name__ == "__main__":
    raise SystemExit(main())
