"""The engine's feature packages and how they plug into the foundation.

Each package has a ``wiring`` module that, when imported, subscribes its event handlers,
declares its actors, registers its scheduled jobs, and exposes ``register_cli(app)``. The
foundation imports them here, in this order (loyalty before coupons before campaigns, so a
paid order earns points before campaigns react to it), and nowhere else.
"""

from __future__ import annotations

import importlib
from types import ModuleType

PACKAGES = ("loyalty", "coupons", "notifications", "campaigns")
_loaded: list[ModuleType] = []


def load_packages() -> list[ModuleType]:
    """Import every package's wiring once; returns the wiring modules."""
    if not _loaded:
        _loaded.extend(importlib.import_module(f"{name}.wiring") for name in PACKAGES)
    return list(_loaded)
