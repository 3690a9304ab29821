"""What commands share: the loaded program and jobs, with errors turned into exit 1."""

from __future__ import annotations

from typing import Any

from core.cli.output import errors, fail, shown
from core.runtime import Runtime

# Commands that read a program directory of their own (or none), not the configured one.
_OWN_PROGRAM = frozenset({"check", "schema", "demo", "openapi"})


def check_configured_program(runtime: Runtime, *, explicit: bool, command: str | None) -> None:
    """A ``--program`` or ``LOYALTY_PROGRAM_DIR`` that is given must exist and load, whatever
    the command: a typo must not let events in with no loyalty effects (exit 1)."""
    given = explicit or "program_dir" in runtime.settings.model_fields_set
    if given and command not in _OWN_PROGRAM:
        program_or_fail(runtime)


def program_or_fail(runtime: Runtime, *, required: bool = True) -> Any:
    """The loaded program; an invalid one prints every issue and exits 1."""
    if not required and not runtime.program_path.is_dir():
        return None
    from core.program.loader import ProgramInvalid

    if not runtime.program_path.is_dir():
        fail(
            f"{runtime.program_path}: no program directory; pass --program DIR "
            "or set LOYALTY_PROGRAM_DIR (events ingest --no-program stores events without one)"
        )
    try:
        return runtime.program
    except ProgramInvalid as exc:
        for issue in exc.issues:
            errors.print(f"[red]{issue.severity}[/] {shown(issue)}", soft_wrap=True)
        fail(f"{runtime.program_path}: the program has errors; run loyalty-engine check")


def build_jobs_or_fail(runtime: Runtime) -> list[Any]:
    """Every scheduled job of the program (the broker is set up first, so jobs can enqueue)."""
    from core.processes import build_jobs, setup_broker

    program_or_fail(runtime)
    setup_broker(runtime.settings)
    return build_jobs(runtime)
