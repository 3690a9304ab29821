"""How the loyalty package plugs into the foundation (see core/packages.py).

Importing this module subscribes the package's event handlers, declares its actors and
registers its scheduled jobs; `register_cli` adds its commands.
"""

from __future__ import annotations

import typer


def register_cli(app: typer.Typer) -> None:
    """Add this package's commands to the `loyalty-engine` CLI."""


from loyalty import tables as _tables  # noqa: E402,F401  (registers the tables on the metadata)
