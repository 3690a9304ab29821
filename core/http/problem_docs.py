"""Problem+json answers as OpenAPI sees them: :class:`ProblemBody` (the shape
:class:`core.http.problems.Problem` writes) and :func:`problem_responses` for an endpoint's
``responses=``, so every error an endpoint may answer is declared with its media type."""

from __future__ import annotations

from functools import cache
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from core.http.problems import PROBLEM_JSON, TYPE_BASE

_TITLES = {
    400: "Bad request",
    401: "No valid API key: send Authorization: Bearer <key>",
    403: "The API key lacks the scope this endpoint needs",
    404: "Not found",
    409: "Refused: the request conflicts with the stored state",
    422: "Invalid request: each field error names its path",
    429: "Too many requests: wait Retry-After seconds",
}


class FieldError(BaseModel):
    field: str = Field(description="The path of the field, e.g. items.0.price.")
    message: str


class ProblemBody(BaseModel):
    """An RFC 9457 problem: clients switch on ``code``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": TYPE_BASE + "invalid_request",
                    "title": "Invalid request",
                    "status": 422,
                    "code": "invalid_request",
                    "detail": "items.0.price: Input should be greater than or equal to 0",
                    "errors": [
                        {
                            "field": "items.0.price",
                            "message": "Input should be greater than or equal to 0",
                        }
                    ],
                }
            ]
        }
    )

    type: str
    title: str
    status: int
    code: str = Field(description="Stable: clients switch on it.")
    detail: str | None = None
    errors: list[FieldError] | None = None
    reasons: list[str] | None = Field(
        default=None, description="Reason codes of a refusal (409), when it has them."
    )


def problem_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for these error statuses, each a problem+json :class:`ProblemBody`;
    ``descriptions`` (``d409="..."``) say what a status means for this endpoint. The schema is
    inline: FastAPI would file a response ``model`` under application/json."""
    schema = _problem_schema()
    return {
        status: {
            "content": {PROBLEM_JSON: {"schema": schema}},
            "description": descriptions.get(f"d{status}", _TITLES.get(status, "Error")),
        }
        for status in statuses
    }


@cache
def _problem_schema() -> dict[str, Any]:
    schema = ProblemBody.model_json_schema()
    definitions = schema.pop("$defs", {})
    return cast(dict[str, Any], _inline(schema, definitions))


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """``node`` with every ``{"$ref": "#/$defs/X"}`` replaced by X's schema."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node
