"""Every error is ``application/problem+json`` (RFC 9457): ``type``, ``title``, ``status``,
``detail``, a stable ``code`` and, for bad input, ``errors`` naming each field path.

Raise :class:`Problem` from an endpoint; :func:`install_problem_handlers` turns it, FastAPI's
validation errors, HTTP errors and anything unexpected into that shape.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://loyalty-engine.dev/problems/"
log = logging.getLogger(__name__)


class Problem(Exception):
    """An error answer. ``code`` is stable (clients switch on it); ``errors`` are field errors:
    ``{"field": "items.0.price", "message": "..."}``."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        *,
        errors: Sequence[dict[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.errors = list(errors)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        if self.errors:
            body["errors"] = self.errors
        return body


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        problem.body(), status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )


def field_path(location: Sequence[Any]) -> str:
    """``("body", "items", 0, "price")`` → ``items.0.price`` (the request part dropped)."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "body"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": field_path(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(Problem(422, "invalid_request", "Invalid request", detail,
                                        errors=errors))  # fmt: skip

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        code = codes.get(exc.status_code, "http_error")
        title = str(exc.detail) if exc.detail else "Error"
        return problem_response(
            Problem(exc.status_code, code, title, headers=dict(exc.headers or {}))
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in a request")
        return problem_response(
            Problem(500, "internal_error", "Internal error", f"{type(exc).__name__}")
        )
