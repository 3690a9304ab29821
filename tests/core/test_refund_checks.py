"""Refunds are checked against their order: its member, and its total."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine, select

from core.events.handlers import HandlerRegistry
from core.events.intake import IngestReport, Intake, ingest
from core.events.store import fetch_rejected
from core.events.tables import members, refunds

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def order(member: str, total: str = "100.00", *, at: str = "2026-11-01T10:00:00Z") -> dict:
    return {"id": f"paid-{member}", "type": "order.paid", "occurred_at": at, "member_id": member,
            "data": {"order_id": "o-1", "total": total}}  # fmt: skip


def refund(event_id: str, member: str, amount: str, *, at: str = "2026-11-02T10:00:00Z") -> dict:
    return {"id": event_id, "type": "order.refunded", "occurred_at": at, "member_id": member,
            "data": {"order_id": "o-1", "amount": amount}}  # fmt: skip


def send(engine: Engine, *payloads: dict) -> IngestReport:
    return ingest(list(payloads), Intake(engine=engine, now=NOW, registry=HandlerRegistry()))


def refunded(engine: Engine) -> list[tuple[str, Decimal]]:
    with engine.connect() as conn:
        query = select(refunds.c.event_id, refunds.c.amount).order_by(refunds.c.event_id)
        return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


def member_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(members.c.member_id)).scalars())


def test_a_refund_under_another_members_id_is_rejected_and_creates_no_member(
    engine: Engine,
) -> None:
    send(engine, order("m-alice"))

    report = send(engine, refund("r-1", "m-mallory", "50.00"))

    assert report.rejected == 1
    assert "order o-1 belongs to another member" in report.rejections[0].reason
    assert refunded(engine) == []
    assert member_ids(engine) == ["m-alice"]


def test_refunds_must_not_total_more_than_the_order(engine: Engine) -> None:
    send(engine, order("m-1"))

    over = send(engine, refund("r-0", "m-1", "500.00"))
    first = send(engine, refund("r-1", "m-1", "60.00"))
    second = send(engine, refund("r-2", "m-1", "50.00"))
    rest = send(engine, refund("r-3", "m-1", "40.00"))

    assert "would total 500.00, more than its total 100.00" in over.rejections[0].reason
    assert first.accepted == 1
    assert "at most 40.00 is left to refund" in second.rejections[0].reason
    assert rest.accepted == 1
    assert refunded(engine) == [("r-1", Decimal("60.00")), ("r-3", Decimal("40.00"))]


def test_refunds_in_one_batch_are_checked_against_each_other(engine: Engine) -> None:
    report = send(engine, order("m-1"), refund("r-1", "m-1", "70.00"),
                  refund("r-2", "m-1", "70.00", at="2026-11-03T10:00:00Z"))  # fmt: skip

    assert report.as_dict() == {"accepted": 2, "duplicate": 0, "rejected": 1}
    assert refunded(engine) == [("r-1", Decimal("70.00"))]


def test_a_redelivered_refund_is_a_duplicate_not_an_excess(engine: Engine) -> None:
    send(engine, order("m-1"), refund("r-1", "m-1", "100.00"))

    again = send(engine, refund("r-1", "m-1", "100.00"))

    assert again.as_dict() == {"accepted": 0, "duplicate": 1, "rejected": 0}


def test_a_refund_before_its_order_is_checked_when_the_order_arrives(engine: Engine) -> None:
    early = send(engine, refund("r-1", "m-1", "30.00"), refund("r-2", "m-1", "90.00"),
                 refund("r-3", "m-other", "10.00"))  # fmt: skip
    assert early.accepted == 3  # nothing to check them against yet

    arrived = send(engine, order("m-1"))

    assert arrived.accepted == 1
    reasons = {r.event_id: r.reason for r in arrived.rejections}
    assert sorted(reasons) == ["r-2", "r-3"]
    assert reasons["r-2"].startswith("checked when order o-1 arrived: data.amount:")
    assert "belongs to another member" in reasons["r-3"]
    assert refunded(engine) == [("r-1", Decimal("30.00"))]
    with engine.connect() as conn:
        dead = {row["event_id"]: row for row in fetch_rejected(conn)}
    assert '"type": "order.refunded"' in dead["r-2"]["raw"]


def test_a_refund_that_matches_its_late_order_is_kept(engine: Engine) -> None:
    send(engine, refund("r-1", "m-1", "100.00"))

    arrived = send(engine, order("m-1"))

    assert arrived.as_dict() == {"accepted": 1, "duplicate": 0, "rejected": 0}
    assert refunded(engine) == [("r-1", Decimal("100.00"))]


def test_a_redelivered_order_leaves_its_checked_refunds_alone(engine: Engine) -> None:
    send(engine, order("m-1"), refund("r-1", "m-1", "100.00"))

    again = send(engine, order("m-1"))

    assert again.as_dict() == {"accepted": 0, "duplicate": 1, "rejected": 0}
    assert refunded(engine) == [("r-1", Decimal("100.00"))]
