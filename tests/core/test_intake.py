"""Event intake on SQLite and PostgreSQL: one code path, duplicates change nothing, nothing is
dropped silently."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, select

from core.events.handlers import HandlerContext, HandlerRegistry
from core.events.intake import Intake, ingest, ingest_lines
from core.events.store import fetch_rejected
from core.events.tables import carts, events, handler_failures, members, orders, refunds
from core.events.types import Event
from core.schema import metadata

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
# Handlers run only with a program loaded; these generic handlers need none of its content.
PROGRAM = SimpleNamespace(program_file=SimpleNamespace(program=SimpleNamespace(currency="CNY")))


def intake(engine: Engine, **kwargs: Any) -> Intake:
    return Intake(engine=engine, now=NOW, source="test", registry=HandlerRegistry(), **kwargs)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr)
            for t in metadata.sorted_tables
            if t.name != "alembic_version"
        }


def event(event_id: str, kind: str, at: str, member: str = "m-1", **data: Any) -> dict[str, Any]:
    return {"id": event_id, "type": kind, "occurred_at": at, "member_id": member, "data": data}


def test_the_example_scenario_is_accepted_once_and_a_second_ingest_changes_nothing(
    engine: Engine, examples: Path
) -> None:
    lines = (examples / "events" / "scenario.jsonl").read_text().splitlines()

    first = ingest_lines(lines, intake(engine))
    after_first = snapshot(engine)
    second = ingest_lines(lines, intake(engine))

    # th-0018 (an order of a negative total) is invalid on purpose; th-0002 is sent twice.
    assert first.as_dict() == {"accepted": 17, "duplicate": 1, "rejected": 1}
    assert second.as_dict() == {"accepted": 0, "duplicate": 18, "rejected": 1}
    again = snapshot(engine)
    # Each ingest records its own rejection of th-0018; nothing else changes.
    assert [row[1] for row in again.pop("rejected_events")] == ["th-0018", "th-0018"]
    assert [row[1] for row in after_first.pop("rejected_events")] == ["th-0018"]
    assert again == after_first


def test_malformed_lines_are_dead_lettered_with_reasons_and_good_lines_still_count(
    engine: Engine,
) -> None:
    good = json.dumps(
        event("e-ok", "order.paid", "2026-11-01T10:00:00+08:00", order_id="o-1", total="10.00")
    )
    lines = [
        '{"id": "e-1", "type": "order.paid",',
        json.dumps(event("e-2", "order.shipped", "2026-11-01T10:00:00Z")),
        json.dumps(
            {
                "id": "e-3",
                "type": "order.paid",
                "occurred_at": "2026-11-01T10:00:00Z",
                "data": {"order_id": "o-3", "total": "1.00"},
            }
        ),
        json.dumps(event("e-4", "order.paid", "last tuesday", order_id="o-4", total="1.00")),
        json.dumps(event("e-5", "order.paid", "2026-11-01T10:00:00Z", order_id="o-5", total="-3")),
        good,
    ]

    report = ingest_lines(lines, intake(engine))

    assert report.as_dict() == {"accepted": 1, "duplicate": 0, "rejected": 5}
    with engine.connect() as conn:
        stored = {row["line"]: row for row in fetch_rejected(conn)}
    assert set(stored) == {1, 2, 3, 4, 5}
    assert "not valid JSON" in stored[1]["reason"]
    assert "unknown event type 'order.shipped'" in stored[2]["reason"]
    assert stored[3]["reason"] == "member_id: required field is missing"
    assert stored[4]["reason"].startswith("occurred_at: expected an ISO-8601 time with a zone")
    assert stored[5]["reason"].startswith("data.total: must be ≥ 0")
    assert stored[1]["raw"] == lines[0]


def test_an_event_sent_twice_in_one_batch_is_stored_once(engine: Engine) -> None:
    paid = event("e-1", "order.paid", "2026-11-01T10:00:00Z", order_id="o-1", total="5.00")

    report = ingest([paid, paid], intake(engine))

    assert report.as_dict() == {"accepted": 1, "duplicate": 1, "rejected": 0}


def test_an_order_paid_again_under_another_event_id_is_rejected_not_counted_twice(
    engine: Engine,
) -> None:
    ingest(
        [event("e-1", "order.paid", "2026-11-01T10:00:00Z", order_id="o-1", total="5.00")],
        intake(engine),
    )

    report = ingest(
        [event("e-2", "order.paid", "2026-11-02T10:00:00Z", order_id="o-1", total="9.00")],
        intake(engine),
    )

    assert report.rejected == 1
    assert "order o-1 was already paid by event e-1" in report.rejections[0].reason
    with engine.connect() as conn:
        assert conn.execute(select(orders.c.total)).scalars().all() == [Decimal("5.00")]


def test_an_order_before_its_members_registration_still_counts(engine: Engine) -> None:
    ingest(
        [
            event(
                "e-2",
                "order.paid",
                "2026-11-03T10:00:00Z",
                "m-late",
                order_id="o-1",
                total="120.50",
            ),
            event(
                "e-1",
                "member.registered",
                "2026-11-01T10:00:00Z",
                "m-late",
                first_name="Lin",
                locale="zh-CN",
                consents={"email": True},
            ),
        ],
        intake(engine),
    )

    with engine.connect() as conn:
        member = conn.execute(select(members)).one()
        order = conn.execute(select(orders)).one()
    assert member.first_name == "Lin" and member.consent_email is True
    assert member.registered_at == datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert order.member_id == "m-late" and order.total == Decimal("120.50")


def test_an_older_profile_update_arriving_late_only_fills_empty_fields(engine: Engine) -> None:
    ingest(
        [event("e-2", "member.updated", "2026-11-05T10:00:00Z", email="new@example.com")],
        intake(engine),
    )
    ingest(
        [
            event(
                "e-1",
                "member.registered",
                "2026-11-01T10:00:00Z",
                email="old@example.com",
                first_name="Ana",
                consents={"sms": False},
            )
        ],
        intake(engine),
    )

    with engine.connect() as conn:
        member = conn.execute(select(members)).one()
    assert member.email == "new@example.com"
    assert member.first_name == "Ana"
    assert member.consent_sms is False


def test_a_cart_is_converted_whichever_of_cart_and_order_arrives_first(engine: Engine) -> None:
    item = {"sku": "K-1", "name": "Pot", "category": "kitchen", "price": "80.00", "qty": 2}
    ingest(
        [
            event(
                "e-2",
                "order.paid",
                "2026-11-02T10:00:00Z",
                order_id="o-1",
                total="160.00",
                items=[item],
                cart_id="c-1",
            )
        ],
        intake(engine),
    )
    ingest(
        [
            event(
                "e-1",
                "cart.updated",
                "2026-11-02T09:00:00Z",
                cart_id="c-1",
                total="160.00",
                items=[item],
            )
        ],
        intake(engine),
    )

    with engine.connect() as conn:
        cart = conn.execute(select(carts)).one()
    assert cart.converted_order_id == "o-1"
    assert cart.total == Decimal("160.00") and cart.items[0]["qty"] == 2


def test_a_newer_cart_update_wins_over_an_older_one_arriving_later(engine: Engine) -> None:
    newer = event("e-2", "cart.updated", "2026-11-02T10:00:00Z", cart_id="c-1", total="30.00")
    older = event("e-1", "cart.updated", "2026-11-02T09:00:00Z", cart_id="c-1", total="99.00")

    ingest([newer], intake(engine))
    ingest([older], intake(engine))

    with engine.connect() as conn:
        assert conn.execute(select(carts.c.total)).scalar() == Decimal("30.00")


def test_partial_refunds_are_kept_one_row_each(engine: Engine) -> None:
    ingest(
        [
            event("e-1", "order.paid", "2026-11-01T10:00:00Z", order_id="o-1", total="100.00"),
            event("e-2", "order.refunded", "2026-11-02T10:00:00Z", order_id="o-1", amount="30.00"),
            event("e-3", "order.refunded", "2026-11-03T10:00:00Z", order_id="o-1", amount="20.00"),
        ],
        intake(engine),
    )

    with engine.connect() as conn:
        amounts = conn.execute(select(refunds.c.amount).order_by(refunds.c.event_id)).scalars()
        assert list(amounts) == [Decimal("30.00"), Decimal("20.00")]


def test_money_keeps_its_exact_decimal_value_from_json_numbers(engine: Engine) -> None:
    line = (
        '{"id": "e-1", "type": "order.paid", "occurred_at": "2026-11-01T10:00:00Z", '
        '"member_id": "m-1", "data": {"order_id": "o-1", "total": 0.10}}'
    )

    ingest_lines([line], intake(engine))

    with engine.connect() as conn:
        assert conn.execute(select(orders.c.total)).scalar() == Decimal("0.10")


def test_subscribed_handlers_see_each_accepted_event_once_inside_the_transaction(
    engine: Engine,
) -> None:
    registry = HandlerRegistry()
    seen: list[str] = []

    @registry.subscribe("order.paid")
    def count_orders(ctx: HandlerContext, batch: Sequence[Event]) -> None:
        assert ctx.conn.execute(select(events.c.id).where(events.c.id == batch[0].id)).scalar()
        seen.extend(e.id for e in batch)

    paid = event("e-1", "order.paid", "2026-11-01T10:00:00Z", order_id="o-1", total="5.00")
    shared = event("e-2", "content.shared", "2026-11-01T11:00:00Z", channel="wechat")
    for _ in range(2):
        ingest([paid, shared], Intake(engine=engine, now=NOW, registry=registry, program=PROGRAM))

    assert seen == ["e-1"]


def test_a_failing_handler_keeps_its_valid_event_stored_and_records_the_failure(
    engine: Engine,
) -> None:
    registry = HandlerRegistry()

    @registry.subscribe("order.paid")
    def refuse_big_orders(ctx: HandlerContext, batch: Sequence[Event]) -> None:
        if any(e.data.total > 1000 for e in batch):  # type: ignore[attr-defined]
            raise RuntimeError("cannot handle big orders")

    small = event("e-1", "order.paid", "2026-11-01T10:00:00Z", order_id="o-1", total="5.00")
    big = event("e-2", "order.paid", "2026-11-01T10:00:00Z", "m-2", order_id="o-2", total="5000")

    report = ingest(
        [small, big], Intake(engine=engine, now=NOW, registry=registry, program=PROGRAM)
    )

    assert report.as_dict() == {"accepted": 2, "duplicate": 0, "rejected": 0}
    assert report.tally("handler_failed") == 1
    with engine.connect() as conn:
        assert sorted(conn.execute(select(events.c.id)).scalars()) == ["e-1", "e-2"]
        assert sorted(conn.execute(select(orders.c.order_id)).scalars()) == ["o-1", "o-2"]
        failures = conn.execute(select(handler_failures)).all()
    assert [(f.event_id, f.status, f.attempts) for f in failures] == [("e-2", "failed", 1)]
    assert failures[0].handler.endswith("refuse_big_orders")
    assert "cannot handle big orders" in failures[0].error


@pytest.mark.parametrize("kind", ["tier.changed", "referral.qualified"])
def test_events_the_engine_emits_itself_cannot_be_sent_in(engine: Engine, kind: str) -> None:
    report = ingest([event("e-1", kind, "2026-11-01T10:00:00Z")], intake(engine))

    assert report.rejected == 1
    assert "emitted by the engine itself" in report.rejections[0].reason
