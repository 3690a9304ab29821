"""Errors of the world around a command (database, files) in words, at the CLI's edge.

A command that cannot reach its database or open a file is a user error (exit 1) whose message
names the URL (password hidden) or the file; everything else that escapes is a bug.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from core.db import DatabaseError

_URL_FIX = "check LOYALTY_DATABASE_URL (sqlite:///path.db or postgresql://user@host/db)"
_PASSWORD = re.compile(r"(//[^:/@]*:)[^@/]*@")


def describe_environment_error(exc: BaseException) -> str | None:
    """One line for a database or file problem; ``None`` for anything else (a bug)."""
    if isinstance(exc, DatabaseError):
        return str(exc)
    if isinstance(exc, OperationalError):
        return _unreachable(exc)
    if isinstance(exc, NoSuchModuleError) or _bad_url(exc) or _missing_driver(exc):
        return f"unsupported database URL {database_url()!r}; {_URL_FIX}"
    if isinstance(exc, OSError) and exc.errno is not None:  # a disk, a permission, a socket
        where = f"{exc.filename}: " if exc.filename is not None else ""
        return f"{where}{exc.strerror or exc}"
    return None


def _unreachable(exc: OperationalError) -> str:
    reason = _first_line(exc.orig) if exc.orig is not None else _first_line(exc)
    if exc.statement is None:  # raised while connecting
        return f"the database at {database_url()} could not be reached ({reason}); {_URL_FIX}"
    return f"the database at {database_url()} failed ({reason}); try again"


def _bad_url(exc: BaseException) -> bool:
    return isinstance(exc, ArgumentError) and "SQLAlchemy URL" in str(exc)


def _missing_driver(exc: BaseException) -> bool:
    if not isinstance(exc, ImportError) or exc.name is None:
        return False
    try:
        return make_url(_raw_url()).get_driver_name() == exc.name
    except ArgumentError:
        return False


def database_url() -> str:
    """The configured database URL with its password hidden."""
    raw = _raw_url()
    try:
        return make_url(raw).render_as_string(hide_password=True)
    except ArgumentError:
        return _PASSWORD.sub(r"\1***@", raw)


def _raw_url() -> str:
    from core.runtime import get_runtime

    return get_runtime().settings.database_url


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
