"""Intake plans each statement of a batch for its parameters on PostgreSQL (a generic plan
rescans an ``= ANY($1)`` array for every row), and only inside the batch's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace

from sqlalchemy import Engine, text

from core.events.handlers import HandlerContext, HandlerRegistry
from core.events.intake import Intake, ingest
from core.events.types import Event

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PROGRAM = SimpleNamespace(program_file=SimpleNamespace(program=SimpleNamespace(currency="CNY")))


def test_handlers_run_with_custom_plans_and_the_pooled_connection_keeps_its_default(
    pg_engine: Engine,
) -> None:
    registry = HandlerRegistry()
    seen: list[str] = []

    @registry.subscribe("order.paid")
    def read_plan_mode(ctx: HandlerContext, batch: Sequence[Event]) -> None:
        seen.append(ctx.conn.execute(text("SHOW plan_cache_mode")).scalar_one())

    paid = {
        "id": "e-1",
        "type": "order.paid",
        "occurred_at": "2026-11-01T10:00:00Z",
        "member_id": "m-1",
        "data": {"order_id": "o-1", "total": "5.00"},
    }
    ingest([paid], Intake(engine=pg_engine, now=NOW, registry=registry, program=PROGRAM))

    assert seen == ["force_custom_plan"]
    with pg_engine.connect() as conn:
        assert conn.execute(text("SHOW plan_cache_mode")).scalar_one() == "auto"
