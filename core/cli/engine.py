"""``tick``, ``worker``, ``scheduler``, ``serve``, ``db upgrade``, ``demo``: running the engine."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from core.cli.options import parse_instant
from core.cli.output import console, fail, print_json
from core.cli.runtime import build_jobs_or_fail
from core.runtime import get_runtime

MAX_WORKERS = 256  # processes or threads one worker command starts
db_app = typer.Typer(help="Database schema.")


def tick(
    until: Annotated[str, typer.Option("--until", help="Tick to this time (ISO-8601, zoned).")],
    start: Annotated[
        str | None, typer.Option("--from", help="Where the first tick starts (default: --until).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the firings as JSON.")] = False,
) -> None:
    """Fire, in time order, every scheduled job due since the last tick, draining all work."""
    from core.ticking import TickError
    from core.ticking import tick as run_tick

    runtime = get_runtime()
    jobs = build_jobs_or_fail(runtime)
    target = parse_instant(until, option="--until")
    begin = parse_instant(start, option="--from") if start else None
    try:
        report = run_tick(runtime, jobs, until=target, start=begin)
    except TickError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {
                "from": report.start,
                "until": report.until,
                "fired": [{"at": t, "job": j} for t, j in report.fired],
            }
        )
        return
    console.print(
        f"ticked {report.start.isoformat()} → {report.until.isoformat()}: "
        f"{len(report.fired)} firings"
    )
    for at, job_id in report.fired:
        console.print(f"  {at.isoformat()}  {job_id}")


def worker(
    processes: Annotated[
        int | None, typer.Option(min=1, max=MAX_WORKERS, help="Worker processes.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, max=MAX_WORKERS, help="Threads per process.")
    ] = None,
) -> None:
    """Run dramatiq workers against LOYALTY_REDIS_URL (scale out by starting more); with
    LOYALTY_WORKER_METRICS_PORT, their Prometheus metrics on that port."""
    import dramatiq.cli

    settings = get_runtime().settings
    if settings.embedded:
        fail(
            "the worker needs LOYALTY_REDIS_URL; without Redis the engine runs its work "
            "in-process (tick, events ingest, scheduler)"
        )
    args = dramatiq.cli.make_argument_parser().parse_args(
        [
            "worker:broker",
            "--processes",
            str(processes or settings.worker_processes),
            "--threads",
            str(threads or settings.worker_threads),
        ]
    )
    from core.processes import WorkerMetricsError, prepare_worker_metrics

    try:  # before anything imports prometheus_client, so the processes share the directory
        metrics_dir = prepare_worker_metrics(settings)
    except WorkerMetricsError as exc:
        fail(str(exc))
    import worker as worker_process

    try:
        broker = worker_process.setup(settings)
        details = [f"{args.processes} processes of {args.threads} threads"]
        if metrics_dir is not None:
            host, port = settings.worker_metrics_host, settings.worker_metrics_port
            details.append(f"metrics http://{host}:{port}/metrics")
        worker_process.log_start("worker", settings, broker, *details)
        code = dramatiq.cli.main(args)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    raise typer.Exit(code)


def scheduler() -> None:
    """Run a scheduler: fires jobs on time; any number may run, each firing happens once."""
    import scheduler as scheduler_process

    runtime = get_runtime()
    build_jobs_or_fail(runtime)
    scheduler_process.main(runtime)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: LOYALTY_API_HOST).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65_535, help="Port to listen on (default: LOYALTY_API_PORT)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=MAX_WORKERS, help="uvicorn worker processes (LOYALTY_API_WORKERS)."
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (/v1, /openapi.json, /livez, /readyz, /metrics) on uvicorn."""
    from core.cli.runtime import program_or_fail
    from core.http.serving import serve as run_server
    from core.processes import describe_broker, start_log

    runtime = get_runtime()
    settings = runtime.settings
    program_or_fail(runtime, required=False)
    runtime.engine  # noqa: B018  migrates the database once, before any worker starts
    host, port = host or settings.api_host, port or settings.api_port
    count = workers or settings.api_workers
    start_log.info(
        f"serve starting: http://{host}:{port}; {count} worker(s); "
        f"broker {describe_broker(settings)}"
    )
    run_server(runtime, host=host, port=port, workers=count)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema (the engine also does this on first use)."""
    from core.migrate import current_revisions

    engine = get_runtime().engine
    with engine.connect() as conn:
        console.print(f"database at revisions {', '.join(sorted(current_revisions(conn)))}")


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its database and outbox.")
    ] = Path("demo-run"),
) -> None:
    """Run the embedded engine end to end on the example program and print what happened."""
    from core.demo import run_demo

    run_demo(directory, console=console)


def register(app: typer.Typer) -> None:
    app.command()(tick)
    app.command()(worker)
    app.command()(scheduler)
    app.command()(demo)
    app.command()(serve)
    app.add_typer(db_app, name="db")
