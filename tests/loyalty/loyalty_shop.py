"""Factories for loyalty tests: shop events as the shop sends them, ingestion, program variants."""

from __future__ import annotations

import dataclasses
import itertools
import zlib
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from core.events.intake import IngestReport, Intake, ingest
from core.events.types import Event
from core.events.validation import validate_event

_ids = itertools.count(1)


def at(text: str) -> datetime:
    """A Shanghai time written without its zone: ``at("2026-11-05 21:40")``."""
    return datetime.fromisoformat(text.replace(" ", "T") + "+08:00")


def _event(kind: str, member: str, when: str, data: dict[str, Any], event_id: str | None) -> dict:
    return {
        "id": event_id or f"evt-{next(_ids):06d}",
        "type": kind,
        "occurred_at": at(when).isoformat(),
        "member_id": member,
        "data": data,
    }


def registered(member: str, when: str, *, event_id: str | None = None, **data: Any) -> dict:
    profile = {
        "email": f"{member}@example.com",
        "phone": f"+86139{zlib.crc32(member.encode()) % 10**8:08d}",
    }
    return _event("member.registered", member, when, {**profile, **data}, event_id)


def paid(
    member: str, order: str, total: str, when: str, *, event_id: str | None = None, **data: Any
) -> dict:
    items = [{"sku": "K-100", "name": "Pan", "category": "kitchen", "price": total, "qty": 1}]
    return _event(
        "order.paid",
        member,
        when,
        {"order_id": order, "total": total, "currency": "CNY", "items": items, **data},
        event_id,
    )


def refunded(
    member: str, order: str, amount: str, when: str, *, event_id: str | None = None
) -> dict:
    return _event("order.refunded", member, when, {"order_id": order, "amount": amount}, event_id)


def reviewed(
    member: str, when: str, *, has_photo: bool = True, event_id: str | None = None
) -> dict:
    data = {"order_id": "o-any", "sku": "K-100", "has_photo": has_photo}
    return _event("review.posted", member, when, data, event_id)


def shared(member: str, when: str, *, event_id: str | None = None) -> dict:
    return _event("content.shared", member, when, {"channel": "wechat"}, event_id)


def event(payload: dict) -> Event:
    return validate_event(payload)


def ingest_batch(
    engine: Engine, program: Any, *payloads: dict, now: datetime | None = None
) -> IngestReport:
    """All payloads in one batch (one transaction), at ``now`` (default: the latest event)."""
    now = now or max(datetime.fromisoformat(p["occurred_at"]) for p in payloads)
    return ingest(list(payloads), Intake(engine=engine, now=now, program=program))


def replay(engine: Engine, program: Any, *payloads: dict) -> IngestReport:
    """Each payload in its own batch at its own time, in time order (as the shop sends them)."""
    report = IngestReport()
    for payload in sorted(payloads, key=lambda p: p["occurred_at"]):
        report.add(ingest_batch(engine, program, payload))
    return report


def program_with(program: Any, **sections: dict[str, Any]) -> Any:
    """The program with fields of its sections replaced: ``program_with(p, tiers={...})``."""
    file = program.program_file
    updates = {
        name: getattr(file, name).model_copy(update=changes) for name, changes in sections.items()
    }
    return dataclasses.replace(program, program_file=file.model_copy(update=updates))
