"""JSON Schema of each program file kind, for editors (YAML language servers) to validate with.

Pydantic's validation-mode schema (draft 2020-12) already says ``additionalProperties: false``
wherever the models forbid extra fields; this adds ``$schema`` and a title.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from campaigns.definitions import Campaign
from core.program.program_file import ProgramFile
from coupons.definitions import CouponsFile
from notifications.template_files import TemplateFile

DRAFT = "https://json-schema.org/draft/2020-12/schema"

_KINDS: dict[str, tuple[type[BaseModel], str]] = {
    "program": (ProgramFile, "program.yaml: tiers, points, referral and messaging rules"),
    "coupons": (CouponsFile, "coupons.yaml: coupon definitions"),
    "campaign": (Campaign, "campaigns/<id>.yaml: one campaign"),
    "template": (TemplateFile, "templates/<id>.yaml: one message, per channel and locale"),
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """The schema of each file kind: ``program``, ``coupons``, ``campaign``, ``template``."""
    return {kind: _schema(model, title) for kind, (model, title) in _KINDS.items()}


def _schema(model: type[BaseModel], title: str) -> dict[str, Any]:
    body = model.model_json_schema(mode="validation")
    return {
        "$schema": DRAFT,
        **body,
        "title": title,
    }
