"""Field types endpoints share: text that reaches the database has no control characters
(PostgreSQL stores no NUL), so such input is a 422 naming the field, never a 500."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
# An id or key as an event's ids may be (core.events.types.Id), printable.
Key = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=PRINTABLE)
]
