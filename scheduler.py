"""The scheduler process: builds every package's jobs and fires them on time, once each.

Any number of scheduler processes may run; ``core.scheduling`` explains the once-per-firing
claim and the misfire and coalescing rules. In the embedded default (no Redis) the scheduler
also runs an in-process worker, since no other process can reach its broker.
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from typing import Any

from dramatiq import Broker, Worker

from core.runtime import Runtime, get_runtime
from core.scheduling import Job, jobs_registry, run_scheduler

# The foundation's own job modules; feature packages register theirs through core.packages.
JOB_MODULES = ("core.jobs",)

log = logging.getLogger(__name__)


def build_jobs(runtime: Runtime) -> list[Job]:
    from core.packages import load_packages

    for module in JOB_MODULES:
        importlib.import_module(module)
    load_packages()
    return jobs_registry.build(runtime)


def main(runtime: Runtime | None = None, stop: threading.Event | None = None) -> int:
    """Run until SIGINT or SIGTERM; returns the number of firings this process claimed."""
    import worker

    runtime = runtime or get_runtime()
    broker = worker.setup(runtime.settings)
    jobs = build_jobs(runtime)
    stop = stop or _stop_on_signals()
    in_process = Worker(broker, worker_threads=2) if runtime.settings.embedded else None
    if in_process:
        in_process.start()
    log_start(runtime, broker, jobs, in_process=in_process is not None)
    try:
        return run_scheduler(jobs, engine=runtime.engine, clock=runtime.clock, stop=stop)
    finally:
        if in_process:
            in_process.stop()


def log_start(runtime: Runtime, broker: Broker, jobs: list[Job], *, in_process: bool) -> str:
    """The scheduler's start line: broker, queues, the ids of the jobs it fires."""
    import worker

    details = [f"{len(jobs)} jobs: {', '.join(job.id for job in jobs) or 'none'}"]
    if in_process:
        details.append("an in-process worker runs the queues")
    return worker.log_start("scheduler", runtime.settings, broker, *details)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        log.info("scheduler stopping on signal %d", signum)
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return stop
