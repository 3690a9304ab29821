"""A valid event is never lost to a handler: failures are kept, retried in order, exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from core.db import bulk_insert
from core.events.failures import FIRST_DELAY, MAX_DELAY, backoff
from core.events.handlers import HandlerContext, HandlerRegistry
from core.events.intake import Intake, ingest
from core.events.internal import internal_event
from core.events.retry import retry_failures
from core.events.tables import events, handler_failures, orders
from core.events.types import Event
from core.state import engine_state

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PROGRAM = SimpleNamespace(program_file=SimpleNamespace(program=SimpleNamespace(currency="CNY")))


def paid(event_id: str, member: str, total: str, at: str = "2026-11-01T10:00:00Z") -> dict:
    data = {"order_id": f"o-{event_id}", "total": total}
    return {"id": event_id, "type": "order.paid", "occurred_at": at, "member_id": member,
            "data": data}  # fmt: skip


class Shop:
    """A handler that records each order once under an idempotency key, and can be broken."""

    def __init__(self) -> None:
        self.registry = HandlerRegistry()
        self.broken_over: int | None = 1000
        self.deferred: list[str] = []
        self.registry.subscribe("order.paid")(self.credit)

    def credit(self, ctx: HandlerContext, batch: Sequence[Event]) -> None:
        rows = []
        for event in batch:
            if self.broken_over is not None and event.data.total > self.broken_over:  # type: ignore[attr-defined]
                raise RuntimeError(f"rule failed on {event.id}")
            rows.append({"key": f"credit:{event.id}", "value": str(event.data.total)})  # type: ignore[attr-defined]
            ctx.after_commit(lambda e=event.id: self.deferred.append(e))
        # engine_state's primary key is the idempotency key: a second credit would fail.
        bulk_insert(ctx.conn, engine_state, rows)

    def intake(self, engine: Engine, **changes: Any) -> Intake:
        values = {"engine": engine, "now": NOW, "registry": self.registry, "program": PROGRAM}
        return Intake(**{**values, **changes})


def credits(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        keys = conn.execute(select(engine_state.c.key).order_by(engine_state.c.key)).scalars()
        return [k.removeprefix("credit:") for k in keys]


def failures(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(handler_failures.c.event_id, handler_failures.c.status,
                   handler_failures.c.attempts).order_by(handler_failures.c.event_id)
        )  # fmt: skip
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_only_the_failing_event_is_set_aside_and_its_effects_are_undone(engine: Engine) -> None:
    shop = Shop()

    report = ingest([paid("e-1", "m-1", "5"), paid("e-2", "m-2", "5000"),
                     paid("e-3", "m-3", "7")], shop.intake(engine))  # fmt: skip

    assert report.as_dict() == {"accepted": 3, "duplicate": 0, "rejected": 0}
    assert credits(engine) == ["e-1", "e-3"]
    assert failures(engine) == [("e-2", "failed", 1)]
    # Actions deferred by the failed attempts (the whole batch, then e-2 alone) never run.
    assert sorted(shop.deferred) == ["e-1", "e-3"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 3
        assert conn.execute(select(func.count()).select_from(orders)).scalar() == 3


def test_a_members_later_events_wait_behind_an_earlier_failure_in_order(engine: Engine) -> None:
    shop = Shop()
    ingest([paid("e-1", "m-1", "5000", "2026-11-01T10:00:00Z"),
            paid("e-2", "m-1", "5", "2026-11-01T11:00:00Z")], shop.intake(engine))  # fmt: skip
    ingest([paid("e-3", "m-1", "6", "2026-11-02T10:00:00Z"),
            paid("e-4", "m-2", "6", "2026-11-02T10:00:00Z")], shop.intake(engine))  # fmt: skip

    assert credits(engine) == ["e-4"]
    assert failures(engine) == [("e-1", "failed", 1), ("e-2", "waiting", 0), ("e-3", "waiting", 0)]

    shop.broken_over = None
    report = retry_failures(engine, program=PROGRAM, now=NOW, registry=shop.registry)

    assert report.as_dict() == {"resolved": 3, "failed": 0, "waiting": 0}
    assert credits(engine) == ["e-1", "e-2", "e-3", "e-4"]
    assert [s for _, s, _ in failures(engine)] == ["resolved"] * 3


def test_a_retry_that_fails_again_stops_its_queue_and_backs_off(engine: Engine) -> None:
    shop = Shop()
    ingest([paid("e-1", "m-1", "5000", "2026-11-01T10:00:00Z"),
            paid("e-2", "m-1", "5", "2026-11-01T11:00:00Z")], shop.intake(engine))  # fmt: skip

    early = retry_failures(engine, program=PROGRAM, now=NOW, due_only=True, registry=shop.registry)
    later = NOW + FIRST_DELAY
    again = retry_failures(
        engine, program=PROGRAM, now=later, due_only=True, registry=shop.registry
    )

    assert early.as_dict() == {"resolved": 0, "failed": 0, "waiting": 0}  # backoff not passed
    assert again.as_dict() == {"resolved": 0, "failed": 1, "waiting": 1}
    assert failures(engine) == [("e-1", "failed", 2), ("e-2", "waiting", 0)]
    with engine.connect() as conn:
        next_at = conn.execute(
            select(handler_failures.c.next_attempt_at).where(handler_failures.c.event_id == "e-1")
        ).scalar_one()
    assert next_at == later + backoff(2)
    assert credits(engine) == []


def test_retrying_one_event_retries_the_earlier_ones_of_its_queue_first(engine: Engine) -> None:
    shop = Shop()
    ingest([paid("e-1", "m-1", "5000", "2026-11-01T10:00:00Z"),
            paid("e-2", "m-1", "5", "2026-11-01T11:00:00Z"),
            paid("e-3", "m-1", "6", "2026-11-01T12:00:00Z")], shop.intake(engine))  # fmt: skip
    shop.broken_over = None

    report = retry_failures(
        engine, program=PROGRAM, now=NOW, event_ids=["e-2"], registry=shop.registry
    )

    assert report.resolved == 2
    assert credits(engine) == ["e-1", "e-2"]
    assert failures(engine)[2] == ("e-3", "waiting", 0)


def test_a_retried_effect_happens_exactly_once(engine: Engine) -> None:
    shop = Shop()
    ingest([paid("e-1", "m-1", "5000")], shop.intake(engine))
    shop.broken_over = None

    first = retry_failures(engine, program=PROGRAM, now=NOW, registry=shop.registry)
    second = retry_failures(engine, program=PROGRAM, now=NOW, registry=shop.registry)
    ingest([paid("e-1", "m-1", "5000")], shop.intake(engine))  # redelivered: a duplicate

    assert (first.resolved, second.resolved) == (1, 0)
    assert credits(engine) == ["e-1"]
    assert shop.deferred == ["e-1"]


def test_events_stored_with_no_program_are_handled_once_one_is_loaded(engine: Engine) -> None:
    shop = Shop()
    shop.broken_over = None

    report = ingest([paid("e-1", "m-1", "5"), paid("e-2", "m-2", "6")],
                    shop.intake(engine, program=None))  # fmt: skip

    assert report.accepted == 2 and report.tally("handler_waiting") == 2
    assert credits(engine) == []
    assert failures(engine) == [("e-1", "waiting", 0), ("e-2", "waiting", 0)]

    retried = retry_failures(engine, program=PROGRAM, now=NOW, registry=shop.registry)

    assert retried.resolved == 2
    assert credits(engine) == ["e-1", "e-2"]


def test_a_failing_subscriber_of_an_engine_event_does_not_undo_its_cause(engine: Engine) -> None:
    registry = HandlerRegistry()

    @registry.subscribe("order.paid")
    def emit_tier_change(ctx: HandlerContext, batch: Sequence[Event]) -> None:
        bulk_insert(ctx.conn, engine_state, [{"key": "cause", "value": "x"}])
        changed = internal_event(event_id="tier-1", type="tier.changed", member_id="m-1",
                                 occurred_at=NOW, data={"to": "gold"})  # fmt: skip
        ctx.emit([changed], registry=registry)

    @registry.subscribe("tier.changed")
    def broken_campaign(ctx: HandlerContext, batch: Sequence[Event]) -> None:
        raise ValueError("campaign broke")

    ingest([paid("e-1", "m-1", "5")], Intake(engine=engine, now=NOW, registry=registry,
                                             program=PROGRAM))  # fmt: skip

    with engine.connect() as conn:
        assert conn.execute(select(engine_state.c.key)).scalars().all() == ["cause"]
    assert failures(engine) == [("tier-1", "failed", 1)]

    registry.unsubscribe(broken_campaign)

    @registry.subscribe("tier.changed")
    def fixed_campaign(ctx: HandlerContext, batch: Sequence[Event]) -> None:
        assert batch[0].data.to == "gold"  # type: ignore[attr-defined]

    fixed_campaign.__qualname__ = broken_campaign.__qualname__  # same name: the fixed release
    report = retry_failures(engine, program=PROGRAM, now=NOW, registry=registry)
    assert report.resolved == 1


def test_a_handler_that_no_longer_exists_is_reported_not_dropped(engine: Engine) -> None:
    shop = Shop()
    ingest([paid("e-1", "m-1", "5000")], shop.intake(engine))

    report = retry_failures(engine, program=PROGRAM, now=NOW, registry=HandlerRegistry())

    assert report.failed == 1
    assert "no handler named" in report.errors[0][2]
    assert failures(engine) == [("e-1", "failed", 2)]


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [(1, FIRST_DELAY), (2, 2 * FIRST_DELAY), (3, 4 * FIRST_DELAY), (50, MAX_DELAY)],
)
def test_backoff_doubles_up_to_a_cap(attempts: int, delay: timedelta) -> None:
    assert backoff(attempts) == delay


def test_bookkeeping_that_needs_no_program_runs_without_one(engine: Engine) -> None:
    registry = HandlerRegistry()
    seen: list[str] = []
    registry.subscribe("order.paid", needs_program=False)(
        lambda ctx, b: seen.extend(e.id for e in b)
    )

    report = ingest([paid("e-1", "m-1", "5")], Intake(engine=engine, now=NOW, registry=registry))

    assert seen == ["e-1"]
    assert report.tally("handler_waiting") == 0
    assert failures(engine) == []
