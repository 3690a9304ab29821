"""What every engine process sets up: the broker with every actor declared, and every job.

The worker (``worker.py``, ``loyalty-engine worker``), the scheduler (``scheduler.py``), ``tick``,
``events ingest`` and the demo all start here, so core needs neither top-level module. Workers
and schedulers say on start which broker and queues they serve (:func:`log_start`). Only the
worker's broker (:func:`setup_worker_broker`) carries dramatiq's Prometheus middleware, when
``LOYALTY_WORKER_METRICS_PORT`` is set (:func:`prepare_worker_metrics`).
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from dramatiq import Broker
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from core.broker import build_broker, install_broker
from core.scheduling import Job, jobs_registry
from core.settings import Settings, get_settings

if TYPE_CHECKING:
    from core.runtime import Runtime

# The foundation's own actor and job modules; feature packages declare theirs through
# core.packages (their wiring imports them).
ACTOR_MODULES = ("core.events.actors", "core.jobs")
JOB_MODULES = ("core.jobs",)

# Start lines are INFO records on a logger set to INFO: they show at the CLI's default level
# (WARNING) without turning on every module's progress messages.
start_log = logging.getLogger("loyalty_engine.start")
start_log.setLevel(logging.INFO)


def import_actors() -> None:
    """Declare every actor: the foundation's, then each package's."""
    from core.packages import load_packages

    for module in ACTOR_MODULES:
        importlib.import_module(module)
    load_packages()


def setup_broker(settings: Settings | None = None) -> Broker:
    """Declare every actor and bind it to the broker the settings call for."""
    import_actors()
    return install_broker(build_broker(settings or get_settings()))


def setup_worker_broker(settings: Settings | None = None) -> Broker:
    """The broker of a worker process (what dramatiq imports as ``worker:broker``): as
    :func:`setup_broker`, plus dramatiq's Prometheus middleware when a metrics port is set."""
    settings = settings or get_settings()
    import_actors()
    broker = build_broker(settings)
    if settings.worker_metrics_port is not None:
        host, port = settings.worker_metrics_host, settings.worker_metrics_port
        broker.add_middleware(worker_metrics_middleware(host, port))
    return install_broker(broker)


class WorkerMetricsError(Exception):
    """The worker's metrics cannot be served as set (the port is taken, the host unknown)."""


def prepare_worker_metrics(settings: Settings) -> Path | None:
    """Before ``loyalty-engine worker`` starts its processes: check that the metrics port is
    free, and make a fresh directory for the processes' metrics, named (with the host and port)
    in the variables dramatiq's middleware and ``prometheus_client`` read when they start.
    None when no port is set. The caller removes the directory when the worker stops."""
    port = settings.worker_metrics_port
    if port is None:
        return None
    host = settings.worker_metrics_host
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise WorkerMetricsError(
            f"LOYALTY_WORKER_METRICS_PORT: cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "pick a free port (one per worker command on a machine) or unset it"
        ) from exc
    directory = Path(tempfile.mkdtemp(prefix="loyalty-worker-metrics-"))
    os.environ.update(
        {
            "dramatiq_prom_db": str(directory),
            "dramatiq_prom_host": host,
            "dramatiq_prom_port": str(port),
            "PROMETHEUS_MULTIPROC_DIR": str(directory),
        }
    )
    return directory


def worker_metrics_middleware(host: str, port: int) -> Middleware:
    """dramatiq's Prometheus middleware, serving on ``host:port``."""
    from dramatiq.middleware import prometheus

    # The module reads its variables once, on import: say them again in case it came first.
    prometheus.HTTP_HOST, prometheus.HTTP_PORT = host, port
    if directory := os.environ.get("dramatiq_prom_db"):  # noqa: SIM112  dramatiq's name
        prometheus.DB_PATH = directory
    return prometheus.Prometheus()


def build_jobs(runtime: Runtime) -> list[Job]:
    """Every scheduled job of every package, for the runtime's program."""
    from core.packages import load_packages

    for module in JOB_MODULES:
        importlib.import_module(module)
    load_packages()
    return jobs_registry.build(runtime)


def describe_broker(settings: Settings) -> str:
    """The broker in a start line: Redis with its URL (password hidden), or in-process."""
    if settings.redis_url:
        return f"Redis at {hide_password(settings.redis_url)}"
    return "in-process (no LOYALTY_REDIS_URL)"


def hide_password(url: str) -> str:
    """``redis://user:secret@host/0`` → ``redis://user:***@host/0`` (also ``?password=``)."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        url = url.replace(parts.netloc, f"{parts.username or ''}:***@{host}", 1)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name == "password" for name, _ in query):
        hidden = [(name, "***" if name == "password" else value) for name, value in query]
        url = url.replace(f"?{parts.query}", f"?{urlencode(hidden, safe='*')}", 1)
    return url


def queue_names(broker: Broker) -> list[str]:
    """The queues the broker's actors use (without dramatiq's delay and dead-letter queues)."""
    return sorted({q_name(queue) for queue in broker.get_declared_queues()})


def log_start(process: str, settings: Settings, broker: Broker, *details: str) -> str:
    """Log (and return) the one line a worker or scheduler prints on start."""
    parts = [f"broker {describe_broker(settings)}", f"queues {', '.join(queue_names(broker))}"]
    line = f"{process} starting: " + "; ".join([*parts, *details])
    start_log.info(line)
    return line
