"""The root command and its global options; each command group lives in its own module."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from core.cli.options import parse_instant
from core.clock import FixedClock, set_clock
from core.runtime import Runtime, set_runtime
from core.settings import Settings

app = typer.Typer(
    name="loyalty-engine",
    help="Loyalty and marketing automation engine for e-commerce shops.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def global_options(
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
    set_runtime(Runtime(settings=Settings(), program_dir=program))


def _register_commands() -> None:
    from core.cli import engine, events, members, program
    from core.packages import load_packages

    program.register(app)
    events.register(app)
    engine.register(app)
    members.register(app)
    for wiring in load_packages():
        wiring.register_cli(app)


_register_commands()


def main() -> None:
    app()
