"""API keys and scopes: who may call what (interface; the HTTP API work fills it in).

A key is ``le_<id>_<secret>``; only a hash of it is stored. Scopes: ``events``, ``checkout``,
``admin`` (admin may do everything). A missing or unknown key is 401, a wrong scope 403.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

SCOPES = ("events", "checkout", "admin")


@dataclass(frozen=True)
class Principal:
    """The caller a request's key names."""

    key_id: str
    name: str
    scopes: frozenset[str]


def create_key(engine: Engine, name: str, scopes: Sequence[str]) -> tuple[str, str]:
    """Store a new key; returns ``(key_id, plaintext key)``; the plaintext is shown once."""
    raise NotImplementedError


def require_scope(scope: str) -> Callable[..., Any]:
    """A FastAPI dependency: the request's :class:`Principal`, if its key has ``scope``."""
    raise NotImplementedError
