"""JSON answers written as the CLI's ``--json`` writes them: decimals as strings (never through
float), times in ISO-8601."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson
from fastapi.responses import JSONResponse


def _exact(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)  # Decimal and other exact values, as their text


class ExactJSONResponse(JSONResponse):
    """A JSON answer for service data that holds Decimals and datetimes."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_exact, option=orjson.OPT_PASSTHROUGH_DATETIME)


def answer_json(content: Any) -> bytes:
    """An answer as JSON, as the response models write it: UTC times end in ``Z``, decimals
    are their text (an endpoint that writes its answer itself, skipping the model's copy)."""
    return orjson.dumps(content, default=_exact, option=orjson.OPT_UTC_Z)
