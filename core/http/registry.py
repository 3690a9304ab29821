"""Where packages register their HTTP routers, without importing FastAPI when they are wired.

A package's ``wiring`` appends ``"package.module:attribute"``, naming an ``APIRouter`` (its
paths relative to ``/v1``). :func:`core.http.app.create_app` imports them when it builds the app,
so a CLI command that never serves pays nothing for the web stack.
"""

from __future__ import annotations

api_routers: list[str] = []


def register_router(target: str) -> None:
    """Add ``"module:attribute"`` (an ``APIRouter`` mounted under ``/v1``) once."""
    if target not in api_routers:
        api_routers.append(target)
