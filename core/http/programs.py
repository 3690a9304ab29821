"""The loaded program for endpoints that need one: a missing or broken program directory is a
503 problem (``program_unavailable``) naming the directory, never a 500."""

from __future__ import annotations

from typing import Any

from core.http.problems import Problem
from core.program.loader import ProgramError
from core.runtime import Runtime


def program_of(runtime: Runtime) -> Any:
    """The runtime's program; raises a 503 :class:`Problem` when there is none to run."""
    if not runtime.program_path.is_dir():
        raise Problem(
            503,
            "program_unavailable",
            "No program is loaded",
            f"{runtime.program_path} is not a program directory; set LOYALTY_PROGRAM_DIR",
        )
    try:
        return runtime.program
    except ProgramError as exc:
        raise Problem(
            503,
            "program_unavailable",
            "The program has errors",
            f"{runtime.program_path}: {exc}; run loyalty-engine check",
        ) from exc
