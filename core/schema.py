"""Every table of every package on one metadata, for Alembic and for tests."""

from core import state as _state  # noqa: F401
from core.db import metadata
from core.events import tables as _event_tables  # noqa: F401
from core.http import tables as _http_tables  # noqa: F401
from core.packages import load_packages

load_packages()  # each package's wiring imports its tables

__all__ = ["metadata"]
