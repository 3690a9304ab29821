"""Argument parsers shared by commands: times, money, ids and bounded numbers.

Each parser turns hostile text into a usage error (exit 2) that names the option and the fix,
before any command runs: absurd numbers never reach a service or a database column.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

# Instants the engine accepts on the command line: far enough either side for any shop's
# history or plans, near enough that adding a program's durations never overflows a datetime.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
# Points in one command: far above any real adjustment, far below BIGINT, so the service's own
# bounds (loyalty.points) decide everything a person could mean, with a domain error (exit 1).
MAX_POINTS = 10**15
# Money on the command line: what a Numeric(18, 2) column holds.
MAX_MONEY = Decimal("9999999999999999.99")
MAX_LIMIT = 100_000  # rows a listing prints
MAX_TEXT = 200  # ids, codes, keys: as long as an event's ids may be (core.events.types.Id)
MAX_REASON = 1_000  # free text kept with a record
MAX_TOKEN = 1_000  # signed tokens (unsubscribe links) carry an id, a channel and a signature

_EXAMPLE_ZONE = timezone(timedelta(hours=8))


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
            f"{value!r} has no time zone; add one, e.g. {zoned_suggestions(parsed)}",
            param_hint=option,
        )
    if not EARLIEST <= parsed < LATEST:
        raise typer.BadParameter(
            f"{value!r} is out of range; give a time from {EARLIEST.year} to {LATEST.year - 1}",
            param_hint=option,
        )
    return parsed


def zoned_suggestions(naive: datetime) -> str:
    """``2026-11-20T00:00:00+08:00 or 2026-11-20T00:00:00Z``: the naive time, with a zone."""
    offset = naive.replace(tzinfo=_EXAMPLE_ZONE).isoformat()
    return f"{offset} or {naive.isoformat()}Z"


def parse_money(value: str) -> Decimal:
    """An amount of money above 0 with at most 2 decimals, as large as a Money column holds."""
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise typer.BadParameter(f"{value!r} is not an amount; write it like 828.00") from exc
    if not amount.is_finite() or not 0 < amount <= MAX_MONEY:
        raise typer.BadParameter(f"{value!r}: give an amount above 0 and at most {MAX_MONEY}")
    if amount != amount.quantize(Decimal("0.01")):
        raise typer.BadParameter(f"{value!r} has more than 2 decimals; write it like 828.00")
    return amount


def parse_text(value: str) -> str:
    """An id, code, key or token: printable text of at most ``MAX_TEXT`` characters."""
    return _checked_text(value, limit=MAX_TEXT)


def parse_reason(value: str) -> str:
    """Free text kept with a record (a ledger reason): printable, at most ``MAX_REASON``."""
    return _checked_text(value, limit=MAX_REASON)


def parse_token(value: str) -> str:
    """A signed token from a link: printable, at most ``MAX_TOKEN`` characters."""
    return _checked_text(value, limit=MAX_TOKEN)


def _checked_text(value: str, *, limit: int) -> str:
    if len(value) > limit:
        raise typer.BadParameter(f"{value[:20]!r}… is too long; give at most {limit} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise typer.BadParameter(f"{value!r} is not valid UTF-8 text") from exc
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise typer.BadParameter(f"{value!r} has control characters; give plain text")
    return value


# Annotated parameter types for the commands of every package.
MemberId = Annotated[str, typer.Argument(help="The member's id.", parser=parse_text)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print as JSON.")]
