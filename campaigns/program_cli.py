"""``loyalty-engine program report``: what marketing as a whole adds, against the global control.

Thin: parses the window's business days, calls campaigns.program_report_facts and
campaigns.program_report, prints. A day that is not a date, out of range, or a ``--since``
after ``--until`` exits 1 naming the option and the fix.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from core.cli.options import EARLIEST, LATEST, JsonOption
from core.cli.output import console, fail, print_json, shown
from core.cli.runtime import program_or_fail
from core.runtime import get_runtime

DEFAULT_DAYS = 30
program_app = typer.Typer(help="The program as a whole: what marketing adds.")


@program_app.command("report")
def report_command(
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="DATE", help="First business day (default: 29 days ago)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="DATE", help="Last business day (default: today)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Marketed members against the global control group: purchase rate and revenue per member.

    Business days in the program's time zone, both included; default: the 30 ending today."""
    from campaigns.program_report import build_program_report, report_lines
    from campaigns.program_report_facts import Window, fetch_program_report_facts

    runtime = get_runtime()
    program = program_or_fail(runtime)
    now = runtime.now()
    zone = program.program_file.program.timezone
    default = Window.ending(now, days=DEFAULT_DAYS, zone=zone)
    first = parse_day(since, option="--since") if since else default.since
    last = parse_day(until, option="--until") if until else default.until
    if first > last:
        fail(
            f"--since {first} is after --until {last}; give a --since on or before --until"
            " (both days are included)"
        )
    with runtime.engine.connect() as conn:
        facts = fetch_program_report_facts(conn, program, since=first, until=last, now=now)
    report = build_program_report(facts)
    if as_json:
        print_json(report.as_dict())
        return
    console.print(shown("\n".join(report_lines(report))), soft_wrap=True)


def parse_day(value: str, *, option: str) -> date:
    """A business day written as an ISO date; anything else exits 1 with the fix."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-11-01")
    if not EARLIEST.year <= day.year < LATEST.year:
        fail(
            f"{option} {value!r} is out of range; give a day from {EARLIEST.year} to"
            f" {LATEST.year - 1}"
        )
    return day


def register(app: typer.Typer) -> None:
    app.add_typer(program_app, name="program")
