"""JSON Schema of each program file kind, for editors (YAML language servers) to validate with.

Pydantic's validation-mode schema (draft 2020-12) already says ``additionalProperties: false``
wherever the models forbid extra fields; this adds ``$schema`` and a title.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from core.program.kinds import file_kinds
from core.program.program_file import ProgramFile

DRAFT = "https://json-schema.org/draft/2020-12/schema"
PROGRAM_TITLE = "program.yaml: tiers, points, referral and messaging rules"


def json_schemas() -> dict[str, dict[str, Any]]:
    """The schema of each file kind: core's ``program``, then each package's (``coupons``,
    ``campaign``, ``template``: :func:`core.program.kinds.register_file_kind`)."""
    from core.packages import load_packages

    load_packages()  # each package registers its file kinds
    schemas = {"program": _schema(ProgramFile, PROGRAM_TITLE)}
    for kind in file_kinds():
        schemas[kind.schema_name] = _schema(kind.model, kind.title)
    return schemas


def _schema(model: type[BaseModel], title: str) -> dict[str, Any]:
    body = model.model_json_schema(mode="validation")
    return {
        "$schema": DRAFT,
        **body,
        "title": title,
    }
