"""Printing for the CLI: rich on a terminal, plain JSON with ``--json``, errors on stderr.

Text that comes from users or the database goes through :func:`shown` before it is put inside
rich markup: a first name such as ``[/]`` must print as itself, not end a style (or crash).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def shown(value: object) -> str:
    """``value`` as text that rich prints literally inside markup."""
    return escape(str(value))


def fail(message: str, *, code: int = 1) -> NoReturn:
    """A user error: say what was wrong on stderr, on one line, and exit 1."""
    errors.print(f"[bold red]error:[/] {shown(one_line(message))}", soft_wrap=True)
    raise typer.Exit(code)


def one_line(message: str) -> str:
    """Newlines in a message (a driver's, a file's content) joined into one line."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)  # Decimal and other exact values print as their text, never as floats


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))
