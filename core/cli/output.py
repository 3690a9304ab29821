"""Printing for the CLI: rich on a terminal, plain JSON with ``--json``, errors on stderr."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, NoReturn

import typer
from rich.console import Console

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def fail(message: str) -> NoReturn:
    """A user error: say what was wrong on stderr and exit 1."""
    errors.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(1)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)  # Decimal and other exact values print as their text, never as floats


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))
