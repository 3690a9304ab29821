"""``events ingest`` and ``events rejected``: for the shop's engineers and operators."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.cli.output import console, errors, fail, print_json
from core.cli.runtime import program_or_fail
from core.events.intake import IngestReport, Intake, ingest_lines
from core.runtime import get_runtime

events_app = typer.Typer(help="Ingest events and inspect the ones that were rejected.")

_SHOWN_REJECTIONS = 20


@events_app.command("ingest")
def ingest_command(
    file: Annotated[str, typer.Argument(help="A JSONL file of events, or - for stdin.")],
    replay: Annotated[
        bool, typer.Option("--replay", help="Tick to each event's occurred_at before it.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Ingest events; prints accepted, duplicate and rejected counts; exit 1 if any was rejected."""
    runtime = get_runtime()
    program = program_or_fail(runtime, required=False)
    source = "stdin" if file == "-" else Path(file).name
    total = None if file == "-" else _count_lines(Path(file))
    with _open(file) as stream, _progress(total, quiet=as_json) as advance:
        if replay:
            from core.cli.runtime import build_jobs_or_fail
            from core.ticking import replay as run_replay

            jobs = build_jobs_or_fail(runtime)
            report = run_replay(runtime, jobs, stream, source=source, progress=advance).ingest
        else:
            intake = Intake(
                engine=runtime.engine,
                now=runtime.now(),
                source=source,
                program=program,
                batch_size=runtime.settings.ingest_batch_size,
            )
            report = ingest_lines(stream, intake, progress=advance)
    _print_report(report, as_json=as_json)
    if report.rejected:
        raise typer.Exit(1)


def _open(file: str) -> Any:
    if file == "-":
        from contextlib import nullcontext

        return nullcontext(sys.stdin)
    path = Path(file)
    if not path.is_file():
        fail(f"{file}: no such file; give a JSONL file of events, or - to read stdin")
    return path.open(encoding="utf-8")


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
        print_json(report.as_dict())
        return
    console.print(
        f"accepted {report.accepted}, duplicate {report.duplicate}, rejected {report.rejected}"
    )
    for rejection in report.rejections[:_SHOWN_REJECTIONS]:
        errors.print(f"[red]rejected[/] {rejection}", soft_wrap=True)
    if report.rejected > _SHOWN_REJECTIONS:
        errors.print(
            f"… and {report.rejected - _SHOWN_REJECTIONS} more: loyalty-engine events rejected"
        )


@events_app.command("rejected")
def rejected_command(
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List dead-lettered events with their reasons, newest first."""
    from core.events.store import fetch_rejected

    with get_runtime().engine.connect() as conn:
        rows = fetch_rejected(conn, limit=limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no rejected events")
    for row in rows:
        where = f"{row['source']}:{row['line']}" if row["line"] else row["source"]
        event_id = f" {row['event_id']}" if row["event_id"] else ""
        console.print(
            f"[dim]{row['rejected_at']:%Y-%m-%d %H:%M:%S}[/] [bold]{where}[/]{event_id}: "
            f"{row['reason']}\n    [dim]{_clip(row['raw'], 110)}[/]",
            soft_wrap=True,
        )


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events")
