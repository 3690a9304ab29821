"""``loyalty-engine demo``: the embedded engine end to end, with a summary a person can read.

It loads the project's example program, replays the example event stream day by day (every
scheduled job fires on the way), ticks a few days past the last event, and prints what the engine
now knows. Each package adds its own lines to the summary through :data:`summary_sections`.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from core.clock import FixedClock, using_clock
from core.events.store import count_events, fetch_rejected, member_summaries
from core.runtime import Runtime, set_runtime
from core.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Each entry renders one part of the summary; packages append theirs as they land.
summary_sections: list[Callable[[Runtime, Console], None]] = []


def run_demo(directory: Path, *, console: Console) -> Runtime:
    """Run the demo in ``directory`` (recreated) and print the summary."""
    from core.processes import build_jobs, setup_broker
    from core.program.check import check_program
    from core.ticking import replay, tick

    runtime = _fresh_runtime(directory)
    console.rule("[bold]loyalty-engine demo[/] (embedded: SQLite, in-process broker)")
    issues = [i for i in check_program(runtime.program_path) if i.severity == "error"]
    if issues:
        raise SystemExit("\n".join(map(str, issues)))
    console.print(f"program  {runtime.program_path} [green]checks clean[/]")
    setup_broker(runtime.settings)
    jobs = build_jobs(runtime)
    console.print(f"jobs     {', '.join(job.id for job in jobs)}")
    scenario = EXAMPLES / "events" / "scenario.jsonl"
    with scenario.open(encoding="utf-8") as lines:
        replayed = replay(runtime, jobs, lines, source=scenario.name)
    end = _last_tick(runtime) + timedelta(days=7)  # past the referral's return window
    ticked = tick(runtime, jobs, until=end)
    _print_summary(runtime, console, replayed, ticked.fired)
    return runtime


def _fresh_runtime(directory: Path) -> Runtime:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{directory / 'loyalty.db'}",
        redis_url=None,
        program_dir=EXAMPLES / "program",
        outbox=directory / "outbox.jsonl",
    )
    runtime = Runtime(settings=settings)
    set_runtime(runtime)
    return runtime


def _last_tick(runtime: Runtime) -> Any:
    from core.ticking import ticked_to

    done = ticked_to(runtime)
    assert done is not None, "the replay ticks the engine to its last event"
    return done


def _print_summary(runtime: Runtime, console: Console, replayed: Any, fired: list[Any]) -> None:
    report = replayed.ingest
    console.print(
        f"events   accepted {report.accepted}, duplicate {report.duplicate}, "
        f"rejected {report.rejected}"
    )
    firings = Counter(job_id for _, job_id in replayed.fired + fired)
    shown = ", ".join(f"{job} ×{n}" for job, n in sorted(firings.items())) or "none"
    console.print(f"firings  {shown}")
    with runtime.engine.connect() as conn:
        by_type = count_events(conn)
        members = member_summaries(conn)
        rejected = fetch_rejected(conn)
    console.print("stored   " + ", ".join(f"{kind} {n}" for kind, n in by_type.items()))
    console.print(_members_table(members))
    for row in rejected:
        console.print(f"[yellow]rejected[/] {row['source']}:{row['line']}: {row['reason']}")
    with using_clock(FixedClock(_last_tick(runtime))):
        for section in summary_sections:
            section(runtime, console)
    console.print(f"\n[dim]database {runtime.settings.database_url}[/]")


def _members_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="members", title_justify="left")
    for column in ("member", "name", "locale", "registered", "orders", "paid", "refunded"):
        table.add_column(
            column, justify="right" if column in ("orders", "paid", "refunded") else "left"
        )
    for row in rows:
        registered = row["registered_at"]
        table.add_row(
            row["member_id"],
            row["first_name"] or "",
            row["locale"] or "",
            registered.date().isoformat() if registered else "not yet",
            str(row["orders"] or 0),
            _money(row["paid"]),
            _money(row["refunded"]),
        )
    return table


def _money(value: Decimal | None) -> str:
    return f"{value or Decimal('0.00'):,.2f}"
