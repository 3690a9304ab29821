"""The worker process: builds the broker from settings and imports every package's actors.

``loyalty-engine worker`` runs dramatiq's worker on this module (``worker:broker``); the
embedded default drains the same actors in-process (``core.broker.drain``). What it sets up is
:mod:`core.processes` (shared with the scheduler, ``tick`` and the demo); this module is the
entry point dramatiq imports, and keeps the names its callers use.
"""

from __future__ import annotations

from typing import Any

from core.broker import get_broker
from core.processes import (
    ACTOR_MODULES,
    describe_broker,
    hide_password,
    import_actors,
    log_start,
    queue_names,
    setup_worker_broker,
    start_log,
)
from core.processes import setup_broker as setup


def __getattr__(name: str) -> Any:
    # dramatiq's CLI imports "worker:broker"; build it on first access, not on import. Only
    # this broker carries the Prometheus middleware (LOYALTY_WORKER_METRICS_PORT).
    if name == "broker":
        return setup_worker_broker()
    raise AttributeError(name)


__all__ = [
    "ACTOR_MODULES",
    "describe_broker",
    "get_broker",
    "hide_password",
    "import_actors",
    "log_start",
    "queue_names",
    "setup",
    "setup_worker_broker",
    "start_log",
]
