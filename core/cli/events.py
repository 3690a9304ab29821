"""``events ingest`` and ``events rejected``: for the shop's engineers and operators."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.cli.options import MAX_LIMIT
from core.cli.output import console, errors, fail, print_json, shown
from core.cli.runtime import program_or_fail
from core.events.intake import IngestReport, Intake, ingest_lines
from core.privacy import mask_raw_event, mask_text
from core.runtime import get_runtime

events_app = typer.Typer(
    help="Ingest events; inspect the ones rejected and the ones whose handlers failed."
)

_SHOWN_REJECTIONS = 20


@events_app.command("ingest")
def ingest_command(
    file: Annotated[str, typer.Argument(help="A JSONL file of events, or - for stdin.")],
    replay: Annotated[
        bool, typer.Option("--replay", help="Tick to each event's occurred_at before it.")
    ] = False,
    no_program: Annotated[
        bool,
        typer.Option(
            "--no-program",
            help="Store and project the events without a program; their handlers run once one "
            "is loaded (events retry --all, or the scheduler's retry job).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Ingest events; prints accepted, duplicate and rejected counts; exit 1 if any was rejected."""
    runtime = get_runtime()
    program = None if no_program else program_or_fail(runtime)
    if replay and no_program:
        raise typer.BadParameter("a replay runs the program's jobs; drop --no-program")
    source = "stdin" if file == "-" else Path(file).name
    total = None if file == "-" else _count_lines(Path(file))
    with _open(file) as stream, _progress(total, quiet=as_json) as advance:
        if replay:
            from core.cli.runtime import build_jobs_or_fail
            from core.ticking import replay as run_replay

            jobs = build_jobs_or_fail(runtime)
            report = run_replay(runtime, jobs, stream, source=source, progress=advance).ingest
        else:
            report = _ingest_now(runtime, stream, source=source, program=program, progress=advance)
    _print_report(report, as_json=as_json)
    if report.rejected:
        fail(f"{report.rejected} line(s) rejected; loyalty-engine events rejected lists them")


def _ingest_now(
    runtime: Any, stream: Any, *, source: str, program: Any, progress: Any
) -> IngestReport:
    """Ingest at the engine clock. What the handlers enqueue (first journey steps, sends) goes
    to the configured broker: Redis for the workers, or, embedded, run here before returning."""
    from core.broker import drain
    from core.processes import setup_broker

    setup_broker(runtime.settings)
    intake = Intake.for_runtime(runtime, source=source, program=program)
    report = ingest_lines(stream, intake, progress=progress)
    if runtime.settings.embedded:
        drain()
    return report


def _open(file: str) -> Any:
    if file == "-":
        from contextlib import nullcontext

        return nullcontext(sys.stdin.buffer)
    path = Path(file)
    if not path.is_file():
        fail(f"{file}: no such file; give a JSONL file of events, or - to read stdin")
    try:
        return path.open("rb")  # bytes: a line that is not UTF-8 is dead-lettered, not fatal
    except OSError as exc:
        fail(f"{file}: cannot be read ({exc.strerror}); check its permissions")


def _count_lines(path: Path) -> int | None:
    if not path.is_file():
        return None
    with path.open("rb") as stream:
        return sum(1 for line in stream if line.strip())


class _progress:
    """A rich progress bar on a terminal (stderr), nothing with --json or when piped."""

    def __init__(self, total: int | None, *, quiet: bool) -> None:
        self._bar = None
        if not quiet:
            self._bar = Progress(
                TextColumn("ingesting"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=errors,
                transient=True,
            )
        self._total = total

    def __enter__(self) -> Any:
        if self._bar is None:
            return None
        self._bar.start()
        task = self._bar.add_task("ingest", total=self._total)
        return lambda n: self._bar.advance(task, n)  # type: ignore[union-attr]

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _print_report(report: IngestReport, *, as_json: bool) -> None:
    if as_json:
        print_json({**report.as_dict(), **_facts(report)})
        return
    console.print(
        f"accepted {report.accepted}, duplicate {report.duplicate}, rejected {report.rejected}"
    )
    for rejection in report.rejections[:_SHOWN_REJECTIONS]:
        errors.print(f"[red]rejected[/] {shown(mask_text(str(rejection)))}", soft_wrap=True)
    if report.rejected > _SHOWN_REJECTIONS:
        errors.print(
            f"… and {report.rejected - _SHOWN_REJECTIONS} more: loyalty-engine events rejected"
        )
    for line in _fact_lines(report):
        console.print(line, soft_wrap=True)


def _facts(report: IngestReport) -> dict[str, int]:
    """The counts beyond accepted/duplicate/rejected, for --json (only those that happened)."""
    counts = {
        "handler_failures": report.tally("handler_failed"),
        "waiting": report.tally("handler_waiting"),
        "coupon_refused": report.tally("coupon_refused"),
        "points_refused": report.tally("points_refused"),
    }
    return {name: count for name, count in counts.items() if count}


def _fact_lines(report: IngestReport) -> list[str]:
    lines = []
    if report.tally("handler_failed"):
        lines.append(
            f"[yellow]handler failures: {report.tally('handler_failed')}[/] (events stored; "
            "retried with backoff; see loyalty-engine events failures)"
        )
    if report.tally("handler_waiting"):
        lines.append(
            f"waiting for their handlers: {report.tally('handler_waiting')} "
            "(loyalty-engine events failures; events retry --all)"
        )
    if report.tally("coupon_refused"):
        lines.append(
            f"refused coupon codes: {report.tally('coupon_refused')} "
            "(loyalty-engine coupons refused)"
        )
    if report.tally("points_refused"):
        lines.append(
            f"refused points redemptions: {report.tally('points_refused')} "
            "(loyalty-engine points refused)"
        )
    return lines


@events_app.command("rejected")
def rejected_command(
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="Show at most this many.")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List dead-lettered events with their reasons, newest first (addresses masked)."""
    from core.events.store import fetch_rejected

    with get_runtime().engine.connect() as conn:
        rows = [_masked_rejection(row) for row in fetch_rejected(conn, limit=limit)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no rejected events")
    for row in rows:
        where = f"{row['source']}:{row['line']}" if row["line"] else row["source"]
        event_id = f" {row['event_id']}" if row["event_id"] else ""
        console.print(
            f"[dim]{row['rejected_at']:%Y-%m-%d %H:%M:%S}[/] [bold]{shown(where)}[/]"
            f"{shown(event_id)}: {shown(row['reason'])}\n"
            f"    [dim]{shown(_clip(row['raw'], 110))}[/]",
            soft_wrap=True,
        )


def _masked_rejection(row: dict[str, Any]) -> dict[str, Any]:
    """A dead-lettered line as shown: emails, phones and push tokens masked in raw and reason."""
    return row | {"raw": mask_raw_event(row["raw"]), "reason": mask_text(row["reason"])}


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def register(app: typer.Typer) -> None:
    from core.cli import failures

    failures.register(events_app)
    app.add_typer(events_app, name="events")
