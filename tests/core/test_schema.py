"""JSON Schema for editors: one per file kind, strict about unknown fields, true to the examples."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.program.schema import json_schemas
from core.program.yamlsource import SourceDocument, parse_document

REPO = Path(__file__).resolve().parents[2]
PROGRAM = REPO / "examples" / "program"
FILE_KINDS = {"program.yaml": "program", "coupons.yaml": "coupons"}


def _kind_of(path: Path) -> str:
    return (
        FILE_KINDS.get(path.name)
        or {"campaigns": "campaign", "templates": "template"}[path.parent.name]
    )


def _objects(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            yield schema
        for value in schema.values():
            yield from _objects(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _objects(item)


_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
    "integer": int,
    "number": (int, Decimal),
}


def _errors(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> list[str]:
    """Validate with the subset of JSON Schema pydantic emits; an empty list means valid."""
    if "$ref" in schema:
        return _errors(value, root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root)
    if "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf") or schema["oneOf"]
        matches = sum(not _errors(value, option, root) for option in options)
        wanted = matches >= 1 if "anyOf" in schema else matches == 1
        return [] if wanted else [f"{value!r} matches {matches} of {len(options)} options"]
    expected = _TYPES.get(schema.get("type", ""), object)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        return [f"{value!r} is not {schema['type']}"]
    if "const" in schema and value != schema["const"]:
        return [f"{value!r} is not {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{value!r} is not one of {schema['enum']}"]
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        return [f"{value!r} does not match {schema['pattern']}"]
    if isinstance(value, list):
        return [e for item in value for e in _errors(item, schema.get("items", {}), root)]
    if isinstance(value, dict):
        return _mapping_errors(value, schema, root)
    return []


def _mapping_errors(
    value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any]
) -> list[str]:
    errors = [f"{name!r} is required" for name in schema.get("required", []) if name not in value]
    for key, item in value.items():
        if key in schema.get("properties", {}):
            errors += _errors(item, schema["properties"][key], root)
        elif schema.get("additionalProperties") is False:
            errors.append(f"{key!r} is not allowed")
        for pattern, item_schema in schema.get("patternProperties", {}).items():
            errors += _errors(item, item_schema, root) if re.search(pattern, key) else []
    return errors


def test_there_is_one_schema_per_file_kind() -> None:
    assert sorted(json_schemas()) == ["campaign", "coupons", "program", "template"]


@pytest.mark.parametrize("kind", ["program", "coupons", "campaign", "template"])
def test_each_schema_is_draft_2020_12_with_a_title(kind: str) -> None:
    schema = json_schemas()[kind]

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"]
    json.dumps(schema)  # nothing but JSON in it


@pytest.mark.parametrize("kind", ["program", "coupons", "campaign", "template"])
def test_every_object_in_a_schema_forbids_unknown_fields(kind: str) -> None:
    objects = list(_objects(json_schemas()[kind]))

    assert objects
    assert all(obj.get("additionalProperties") is False for obj in objects)


EXAMPLE_FILES = {str(path.relative_to(PROGRAM)): path for path in sorted(PROGRAM.rglob("*.yaml"))}


@pytest.mark.parametrize("path", EXAMPLE_FILES.values(), ids=EXAMPLE_FILES)
def test_every_example_file_validates_against_its_schema(path: Path) -> None:
    document = parse_document(path.read_text(encoding="utf-8"), file=path.name)
    assert isinstance(document, SourceDocument)
    schema = json_schemas()[_kind_of(path)]

    assert _errors(document.data, schema, schema) == []


@pytest.mark.parametrize(
    ("kind", "data", "error"),
    [
        ("coupons", {"coupons": [{"id": "x", "nme": {}}]}, "'nme' is not allowed"),
        (
            "campaign",
            {"id": "x", "name": "X", "kind": "marketing", "trigger": {}, "wait": "1d"},
            "'wait' is not allowed",
        ),
        ("template", {"id": "x", "fax": {"body": {"en": "hi"}}}, "'fax' is not allowed"),
    ],
)
def test_the_schema_catches_what_the_loader_catches(kind: str, data: Any, error: str) -> None:
    schema = json_schemas()[kind]

    assert error in _errors(data, schema, schema)
