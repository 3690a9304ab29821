"""The worker process: builds the broker from settings and imports every package's actors.

``loyalty-engine worker`` runs dramatiq's worker on this module (``worker:broker``); the
embedded default drains the same actors in-process (``core.broker.drain``).
"""

from __future__ import annotations

import importlib
from typing import Any

from dramatiq import Broker

from core.broker import build_broker, get_broker, install_broker
from core.settings import Settings, get_settings

# The foundation's own actor modules; feature packages declare theirs through core.packages.
ACTOR_MODULES = (
    "core.events.actors",
    "core.jobs",
)


def import_actors() -> None:
    from core.packages import load_packages

    for module in ACTOR_MODULES:
        importlib.import_module(module)
    load_packages()


def setup(settings: Settings | None = None) -> Broker:
    """Declare every actor and bind it to the broker the settings call for."""
    import_actors()
    return install_broker(build_broker(settings or get_settings()))


def __getattr__(name: str) -> Any:
    # dramatiq's CLI imports "worker:broker"; build it on first access, not on import.
    if name == "broker":
        return setup()
    raise AttributeError(name)


__all__ = ["ACTOR_MODULES", "get_broker", "import_actors", "setup"]
