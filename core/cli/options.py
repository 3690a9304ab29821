"""Global options (``--program``, ``--now``) and argument parsers shared by commands."""

from __future__ import annotations

from datetime import datetime

import typer


def parse_instant(value: str, *, option: str) -> datetime:
    """An ISO-8601 time with a zone; naive or malformed times are usage errors with the fix."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} is not an ISO-8601 time; write e.g. 2026-11-20T15:30:00+08:00",
            param_hint=option,
        ) from exc
    if parsed.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} has no time zone; add one, e.g. {value}+08:00 or {value}Z",
            param_hint=option,
        )
    return parsed
