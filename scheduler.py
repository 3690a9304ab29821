"""The scheduler process: builds every package's jobs and fires them on time, once each.

Building the broker and the jobs is :mod:`core.processes` (shared with ``tick`` and the demo).
Any number of scheduler processes may run; ``core.scheduling`` explains the once-per-firing
claim and the misfire and coalescing rules. In the embedded default (no Redis) the scheduler
also runs an in-process worker, since no other process can reach its broker.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from dramatiq import Broker, Worker

from core import processes
from core.processes import JOB_MODULES, build_jobs, setup_broker
from core.runtime import Runtime, get_runtime
from core.scheduling import Job, run_scheduler

__all__ = ["JOB_MODULES", "build_jobs", "log_start", "main"]

log = logging.getLogger(__name__)


def main(runtime: Runtime | None = None, stop: threading.Event | None = None) -> int:
    """Run until SIGINT or SIGTERM; returns the number of firings this process claimed."""
    runtime = runtime or get_runtime()
    broker = setup_broker(runtime.settings)
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
    details = [f"{len(jobs)} jobs: {', '.join(job.id for job in jobs) or 'none'}"]
    if in_process:
        details.append("an in-process worker runs the queues")
    return processes.log_start("scheduler", runtime.settings, broker, *details)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        log.info("scheduler stopping on signal %d", signum)
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return stop
