"""``events failures`` and ``events retry``: valid events whose handlers failed, kept for retry."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from core.cli.options import MAX_LIMIT, parse_text
from core.cli.output import console, errors, fail, print_json
from core.cli.runtime import program_or_fail
from core.privacy import mask_text
from core.runtime import get_runtime


def failures_command(
    include_resolved: Annotated[
        bool, typer.Option("--all", help="Also list failures a retry has resolved.")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="Show at most this many.")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List valid events whose handlers failed (kept, retried with backoff), oldest first."""
    from core.events.store import count_failures, fetch_failures

    with get_runtime().engine.connect() as conn:
        rows = fetch_failures(conn, include_resolved=include_resolved, limit=limit)
        counts = count_failures(conn)
    if as_json:
        print_json(
            {"counts": counts, "failures": [{**r, "error": mask_text(r["error"])} for r in rows]}
        )
        return
    if not rows:
        console.print("no handler failures")
        return
    for row in rows:
        console.print(_failure_line(row), soft_wrap=True)
    console.print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))


def _failure_line(row: dict[str, Any]) -> str:
    line = (
        f"[bold]{row['event_id']}[/] {row['event_type']} of {row['member_id']} "
        f"at {row['occurred_at']:%Y-%m-%d %H:%M}: [yellow]{row['status']}[/] in "
        f"{row['handler']} after {row['attempts']} attempt(s)"
    )
    if row["status"] != "resolved":
        line += f", next {row['next_attempt_at']:%Y-%m-%d %H:%M:%S}"
    return line + f"\n    [dim]{mask_text(row['error'])}[/]"


def retry_command(
    event_id: Annotated[
        str | None,
        typer.Argument(help="The event whose failures to retry now.", parser=parse_text),
    ] = None,
    retry_all: Annotated[bool, typer.Option("--all", help="Retry every open failure now.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Retry failed handlers now, in event order per member; each effect happens once."""
    from core.events.retry import retry_failures

    if (event_id is None) == (not retry_all):
        raise typer.BadParameter("give an event ID or --all, not both", param_hint="ID|--all")
    runtime = get_runtime()
    program = program_or_fail(runtime)
    report = retry_failures(
        runtime.engine,
        program=program,
        now=runtime.now(),
        event_ids=None if retry_all else [event_id or ""],
    )
    if as_json:
        shown = [{"event_id": e, "handler": h, "error": mask_text(m)} for e, h, m in report.errors]
        print_json({**report.as_dict(), "errors": shown})
    else:
        console.print(
            f"resolved {report.resolved}, failed again {report.failed}, "
            f"still waiting {report.waiting}"
        )
        for failed_id, handler, error in report.errors[:20]:
            errors.print(
                f"[red]failed[/] {failed_id} in {handler}: {mask_text(error)}", soft_wrap=True
            )
    if not retry_all and not (report.resolved or report.failed):
        fail(f"event {event_id} has no open handler failure; see loyalty-engine events failures")
    if report.failed:
        raise typer.Exit(1)


def register(events_app: typer.Typer) -> None:
    events_app.command("failures")(failures_command)
    events_app.command("retry")(retry_command)
