"""The running engine's wiring: settings, the migrated database, the loaded program, the clock.

Built once per process (``get_runtime``); the CLI, actors and the scheduler all go through it so
``--now``, ``--program`` and the settings mean the same thing everywhere.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.clock import Clock, get_clock
from core.db import get_engine
from core.settings import Settings, get_settings


@dataclass
class Runtime:
    """One engine: where its data lives, which program it runs, what time it is."""

    settings: Settings
    program_dir: Path | None = None
    _program: Any = field(default=None, repr=False)

    @cached_property
    def engine(self) -> Engine:
        return get_engine(self.settings.database_url)

    @property
    def clock(self) -> Clock:
        return get_clock()

    def now(self) -> datetime:
        return get_clock().now()

    @property
    def program_path(self) -> Path:
        return self.program_dir or self.settings.program_dir

    @property
    def program(self) -> Any:
        """The program, loaded and checked on first use (raises ``ProgramInvalid`` if broken)."""
        if self._program is None:
            from core.program.loader import load_program

            self._program = load_program(self.program_path)
        return self._program

    def program_or_none(self) -> Any:
        """The program if its directory exists; event intake works without one."""
        if self._program is None and not self.program_path.is_dir():
            return None
        return self.program


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """This process's runtime, built from settings on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime(settings=get_settings())
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    with _lock:
        _runtime = runtime
