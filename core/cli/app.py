"""The root command, its global options and the one safety net every command runs inside.

Exit codes: 0 ok, 1 user error (one line on stderr), 2 usage (click's message), and
:data:`INTERNAL_ERROR` (3) for a bug: an exception no command handled. The safety net prints it
as one line (the traceback only with ``--verbose``) and exits 3, so tests can tell a bug from a
user error: the CLI property test asserts that no input ever exits 3.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from core.cli.edge import describe_environment_error
from core.cli.options import parse_instant
from core.cli.output import errors, fail, one_line, shown
from core.cli.runtime import check_configured_program
from core.clock import FixedClock, set_clock
from core.runtime import Runtime, set_runtime
from core.settings import Settings

INTERNAL_ERROR = 3
_VERBOSE_FLAGS = ("-v", "--verbose")


class GuardedGroup(TyperGroup):
    """The root group: turns any exception a command let through into one line on stderr.

    ``main`` is what both the ``loyalty-engine`` script and ``CliRunner`` call, so tests run
    the commands exactly inside the same net as users do.
    """

    def main(self, args: Sequence[str] | None = None, *rest: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        try:
            return super().main(argv, *rest, **kwargs)
        except Exception as exc:  # the safety net: every command's uncaught exception
            _report(exc, verbose=self._verbose(argv))
            sys.exit(1 if describe_environment_error(exc) else INTERNAL_ERROR)

    def _verbose(self, argv: list[str]) -> bool:
        """``-v`` among the global options (those before the first command name)."""
        for arg in argv:
            if arg in self.commands:
                return False
            if arg in _VERBOSE_FLAGS:
                return True
        return False


def _report(exc: Exception, *, verbose: bool) -> None:
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    described = describe_environment_error(exc)
    if described is None:
        kind = type(exc).__name__
        described = f"internal error: {kind}: {one_line(str(exc))[:300]} (run with -v for details)"
    errors.print(f"[bold red]error:[/] {shown(described)}", soft_wrap=True)


app = typer.Typer(
    name="loyalty-engine",
    help="Loyalty and marketing automation engine for e-commerce shops.",
    cls=GuardedGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def global_options(
    ctx: typer.Context,
    program: Annotated[
        Path | None,
        typer.Option("--program", help="Program directory (default: LOYALTY_PROGRAM_DIR)."),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="The engine clock for this command, ISO-8601 with a zone."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr)
    if now is not None:
        set_clock(FixedClock(parse_instant(now, option="--now")))
    runtime = Runtime(settings=_settings(), program_dir=program)
    set_runtime(runtime)
    check_configured_program(runtime, explicit=program is not None, command=ctx.invoked_subcommand)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "LOYALTY_" + "_".join(str(part) for part in first["loc"]).upper()
        got = first.get("input")
        fail(f"setting {name}: {first['msg']} (got {got!r}); fix it in the environment or .env")


def _register_commands() -> None:
    from core.cli import engine, events, keys, members, openapi, program
    from core.packages import load_packages

    program.register(app)
    events.register(app)
    engine.register(app)
    members.register(app)
    keys.register(app)
    openapi.register(app)
    for wiring in load_packages():
        wiring.register_cli(app)


_register_commands()


def main() -> None:
    """The ``loyalty-engine`` script: the safety net lives in :class:`GuardedGroup`."""
    app()
