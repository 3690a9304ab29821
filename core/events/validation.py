"""Turning raw input (a JSON line or a dict) into a validated :class:`Event`, or a clear reason."""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from core.events.errors import EventRejected
from core.events.types import DATA_MODELS, INTERNAL_EVENT_TYPES, Envelope, Event

_DECODER = json.JSONDecoder(parse_float=Decimal)
BOM = "\ufeff"
# Objects and arrays nested deeper than this are refused (events are a few levels deep).
MAX_DEPTH = 32


def decode_line(raw: bytes) -> str:
    """Bytes of one input line as text; a UTF-8 byte-order mark is dropped."""
    try:
        return raw.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as exc:
        raise EventRejected(
            f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}; "
            "send events as UTF-8 JSON"
        ) from exc


def parse_line(line: str) -> dict[str, Any]:
    """Decode one JSON line, keeping numbers exact (decimals never pass through float)."""
    line = line.removeprefix(BOM)
    if "\x00" in line or "\\u0000" in line:
        raise EventRejected("contains a NUL character, which cannot be stored; remove it")
    if line.count("{") + line.count("[") > MAX_DEPTH:
        _check_depth(line)
    try:
        payload = _DECODER.decode(line)
    except json.JSONDecodeError as exc:
        raise EventRejected(f"not valid JSON: {exc.msg} at column {exc.colno}") from exc
    except RecursionError as exc:
        raise EventRejected(f"JSON nested deeper than {MAX_DEPTH} levels") from exc
    if not isinstance(payload, dict):
        raise EventRejected(f"expected a JSON object, got {type(payload).__name__}")
    if _SURROGATE_ESCAPE.search(line):
        _check_surrogates(payload)
    return payload


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_surrogates(payload: dict[str, Any]) -> None:
    """Escapes of half a character (``\\udcff`` alone) decode to text no database stores."""
    try:
        json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EventRejected(
            "contains an escape of half a UTF-16 surrogate pair (such as \\udcff alone); "
            "send the character itself or a complete pair"
        ) from exc


def _check_depth(line: str) -> None:
    """Refuse deep nesting before decoding it (brackets inside strings are skipped)."""
    depth, in_string, escaped = 0, False, False
    for char in line:
        if in_string:
            escaped = not escaped and char == "\\"
            in_string = escaped or char != '"'
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise EventRejected(f"JSON nested deeper than {MAX_DEPTH} levels")
        elif char in "]}":
            depth -= 1


def validate_event(
    payload: dict[str, Any],
    *,
    currency: str | None = None,
    latest: datetime | None = None,
) -> Event:
    """Validate an envelope and its data; raise :class:`EventRejected` naming field and fix.

    ``latest``: the latest ``occurred_at`` accepted (the engine clock plus the tolerance).
    """
    event_id = payload.get("id") if isinstance(payload.get("id"), str) else None
    kind = payload.get("type")
    if kind in INTERNAL_EVENT_TYPES:
        raise EventRejected(
            f"type: {kind!r} is emitted by the engine itself and cannot be sent in",
            event_id=event_id,
        )
    try:
        envelope = Envelope.model_validate(payload)
        data = DATA_MODELS[envelope.type].model_validate(envelope.data)
    except ValidationError as exc:
        raise EventRejected(_describe(exc, payload), event_id=event_id) from exc
    event_currency = getattr(data, "currency", None)
    if currency and event_currency and event_currency != currency:
        raise EventRejected(
            f"data.currency: {event_currency} is not the program currency {currency}",
            event_id=event_id,
        )
    if latest is not None and envelope.occurred_at > latest:
        raise EventRejected(
            f"occurred_at: {envelope.occurred_at.isoformat()} is after {latest.isoformat()}, "
            "the engine clock plus LOYALTY_EVENT_FUTURE_TOLERANCE; fix the sender's clock "
            "(or the --now of a replay)",
            event_id=event_id,
        )
    return Event(
        id=envelope.id,
        type=envelope.type,
        occurred_at=envelope.occurred_at,
        member_id=envelope.member_id,
        data=data,
        raw_data=envelope.data,
    )


def _describe(exc: ValidationError, payload: dict[str, Any]) -> str:
    inside_data = exc.title != "Envelope"
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"])
        where = f"data.{loc}" if inside_data else loc
        parts.append(f"{where}: {_message(error, payload)}")
    return "; ".join(parts)


def _message(error: Any, payload: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error" and error["loc"] == ("type",):
        known = ", ".join(sorted(DATA_MODELS))
        return f"unknown event type {error['input']!r}; expected one of {known}"
    if kind.startswith("datetime") or kind == "timezone_aware":
        return (
            "expected an ISO-8601 time with a zone, e.g. 2026-11-05T21:40:00+08:00 "
            f"(got {error.get('input')!r})"
        )
    if kind in ("greater_than_equal", "greater_than"):
        bound = error.get("ctx", {}).get("ge", error.get("ctx", {}).get("gt"))
        sign = "≥" if kind == "greater_than_equal" else ">"
        return f"must be {sign} {bound} (got {error.get('input')!r})"
    if kind == "extra_forbidden":
        return "unknown field; remove it or move it under data"
    return f"{error['msg']} (got {error.get('input')!r})"
