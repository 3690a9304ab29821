"""The OpenAPI schema the HTTP API serves at ``/openapi.json``, as the text of its committed copy
(``docs/openapi.json``), and the check that the copy is current (``loyalty-engine openapi``).

The schema is built from the code alone: the app is made over the default settings (never the
environment or ``.env``), no program and no database, so every machine writes the same bytes.
The text is JSON with sorted keys, indented by 2, ending in a newline.

:func:`document_guard` adds to each ``/v1`` operation what :class:`core.http.guard.ApiGuard`
does around it: the ``Idempotency-Key`` header of a POST and the answers the guard gives itself.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.http.problem_docs import problem_responses

if TYPE_CHECKING:
    from fastapi import FastAPI

COMMITTED_COPY = Path("docs/openapi.json")
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Run this POST at most once: the same key and body again answer the stored "
    "response (Idempotent-Replayed: true) for 24 h; another body is a 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}
# What the guard answers before (or instead of) the endpoint: on every /v1 operation ...
GUARD_ANSWERS = problem_responses(
    413,
    429,
    503,
    d413="The body is over LOYALTY_API_MAX_BODY_BYTES (code body_too_large).",
    d429="The API key sent is over its rate limit: wait Retry-After seconds (code rate_limited).",
    d503="The worker is already answering LOYALTY_API_MAX_IN_FLIGHT requests: retry after "
    "Retry-After seconds (code overloaded).",
)
# ... and on every POST, for its Idempotency-Key.
IDEMPOTENT_ANSWERS = problem_responses(
    400,
    409,
    422,
    d400="The Idempotency-Key is not 1 to 255 printable ASCII characters "
    "(code invalid_idempotency_key).",
    d409="A request with this Idempotency-Key is still running: retry after Retry-After "
    "seconds for its answer (code idempotency_in_progress).",
    d422="The Idempotency-Key was first used for another request (code idempotency_key_reused).",
)


def build_schema() -> dict[str, Any]:
    """The schema ``/openapi.json`` answers, from an app over the default settings."""
    from core.http.app import create_app
    from core.runtime import Runtime
    from core.settings import Settings

    # model_construct: the defaults alone; Settings() would read LOYALTY_* and .env.
    settings = Settings.model_construct(database_url="sqlite://", redis_url=None)
    schema: dict[str, Any] = create_app(Runtime(settings=settings)).openapi()
    return schema


def schema_text(schema: dict[str, Any] | None = None) -> str:
    """``schema`` (default: :func:`build_schema`) as the committed copy holds it."""
    return json.dumps(build_schema() if schema is None else schema, sort_keys=True, indent=2) + "\n"


def copy_difference(path: Path, expected: str) -> str | None:
    """None when the file at ``path`` holds exactly ``expected``, else what is wrong with it."""
    try:
        found = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "does not exist"
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot be read ({exc})"
    if found == expected:
        return None
    found_lines, expected_lines = found.splitlines(), expected.splitlines()
    for number, (got, want) in enumerate(zip(found_lines, expected_lines, strict=False), 1):
        if got != want:
            return f"differs from the served schema at line {number}: {got.strip()[:80]!r}"
    if len(found_lines) != len(expected_lines):
        return (
            f"differs from the served schema: {len(found_lines)} lines, "
            f"the schema has {len(expected_lines)}"
        )
    return "differs from the served schema in its line endings or final newline"


def document_guard(app: FastAPI) -> None:
    """Declare, on every ``/v1`` operation of the app's schema, the ``Idempotency-Key`` of a
    POST and what the guard answers itself (a status the endpoint declares keeps its content,
    and its description gains the guard's)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path, operations in schema.get("paths", {}).items():
            if path.startswith("/v1/"):
                for method, operation in operations.items():
                    _add_guard(operation, post=method == "post")
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_guard(operation: dict[str, Any], *, post: bool) -> None:
    answers = GUARD_ANSWERS | (IDEMPOTENT_ANSWERS if post else {})
    responses = operation.setdefault("responses", {})
    for status, answer in answers.items():
        declared = responses.get(str(status))
        if declared is None:
            responses[str(status)] = copy.deepcopy(answer)  # a copy of its own
        elif answer["description"] not in declared["description"]:
            declared["description"] = (
                f"{declared['description'].rstrip('.')}. Or: {answer['description']}"
            )
    if post:
        operation.setdefault("parameters", []).append(IDEMPOTENCY_HEADER)
