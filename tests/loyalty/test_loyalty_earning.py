"""Earning through event intake: lots, tiers at payment, pending points, once-only credits."""

from __future__ import annotations

from typing import Any

from loyalty_shop import at, event, ingest_batch, paid, registered, replay, reviewed, shared
from sqlalchemy import Engine, func, select

from core.events.handlers import HandlerContext
from loyalty.activity import process_activity
from loyalty.points import award_points, fetch_points
from loyalty.tables import points_ledger, points_lots, tier_history
from loyalty.tiers_store import fetch_tiers, write_tier


def ledger(engine: Engine, member_id: str) -> list[tuple[str, str | None, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(points_ledger.c.kind, points_ledger.c.rule_id, points_ledger.c.points)
            .where(points_ledger.c.member_id == member_id)
            .order_by(points_ledger.c.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def points(engine: Engine, member_id: str, when: str) -> tuple[int, int]:
    with engine.connect() as conn:
        view = fetch_points(conn, member_id, now=at(when))
    return view.balance, view.pending


def test_a_registration_earns_the_welcome_points_available_at_once(
    engine: Engine, program: Any
) -> None:
    replay(engine, program, registered("m-1", "2026-06-01 10:00"))

    assert ledger(engine, "m-1") == [("earn", "welcome", 200)]
    assert points(engine, "m-1", "2026-06-01 10:00") == (200, 0)


def test_purchase_points_stay_pending_for_fifteen_days_then_become_available(
    engine: Engine, program: Any
) -> None:
    replay(engine, program, paid("m-1", "o-1", "828.00", "2026-06-01 10:00"))

    assert points(engine, "m-1", "2026-06-16 09:59") == (0, 828)
    assert points(engine, "m-1", "2026-06-16 10:00") == (828, 0)


def test_an_order_earns_at_the_tier_held_before_it_and_then_moves_the_member_up(
    engine: Engine, program: Any
) -> None:
    replay(
        engine,
        program,
        paid("m-1", "o-1", "2900.00", "2026-03-01 10:00"),
        paid("m-1", "o-2", "200.00", "2026-03-10 10:00"),  # crosses 3000: earns at leaf
        paid("m-1", "o-3", "200.00", "2026-03-11 10:00"),  # earns at bud (1.25)
    )

    assert [pts for _, _, pts in ledger(engine, "m-1")] == [2900, 200, 250]
    with engine.connect() as conn:
        assert fetch_tiers(conn, ["m-1"], default="leaf") == {"m-1": "bud"}
        history = conn.execute(
            select(tier_history.c.from_tier, tier_history.c.to_tier, tier_history.c.cause)
        ).all()
    assert [tuple(h) for h in history] == [("leaf", "bud", "order:o-2")]


def test_orders_in_one_batch_earn_in_time_order_each_at_the_tier_its_predecessor_left(
    engine: Engine, program: Any
) -> None:
    ingest_batch(
        engine,
        program,
        paid("m-1", "o-3", "1000.00", "2026-03-12 10:00"),
        paid("m-1", "o-1", "7000.00", "2026-03-01 10:00"),  # → bud at once
        paid("m-1", "o-2", "2000.00", "2026-03-11 10:00"),  # 1.25 → oolong
    )

    earned = {row[2] for row in ledger(engine, "m-1")}
    assert earned == {7000, 2500, 1500}


def test_an_order_that_arrives_late_earns_at_the_tier_held_when_it_was_paid(
    engine: Engine, program: Any
) -> None:
    replay(engine, program, paid("m-1", "o-1", "3000.00", "2026-03-01 10:00"))

    replay(engine, program, paid("m-1", "o-0", "100.00", "2026-02-01 10:00"))

    assert [pts for _, _, pts in ledger(engine, "m-1")] == [3000, 100]


def test_a_member_set_to_a_tier_by_hand_earns_at_that_tier(engine: Engine, program: Any) -> None:
    with engine.begin() as conn:
        write_tier(conn, "m-1", "oolong", qualifying_spend=0, now=at("2026-01-01 00:00"))

    replay(engine, program, paid("m-1", "o-1", "100.00", "2026-03-01 10:00"))

    assert ledger(engine, "m-1") == [("earn", "purchase", 150)]


def test_reviews_and_shares_earn_within_their_caps(engine: Engine, program: Any) -> None:
    reviews = [reviewed("m-1", f"2026-06-01 {10 + h}:00") for h in range(7)]  # cap: 5 a week
    shares = [shared("m-1", f"2026-06-01 {10 + h}:30") for h in range(12)]  # cap: 10 a month
    ingest_batch(engine, program, *reviews[:2], *shares[:3])
    ingest_batch(engine, program, *reviews[2:], *shares[3:])

    rules = [rule for _, rule, _ in ledger(engine, "m-1")]
    assert (rules.count("photo-review"), rules.count("share")) == (5, 10)


def test_the_same_event_delivered_twice_credits_once(engine: Engine, program: Any) -> None:
    order = paid("m-1", "o-1", "828.00", "2026-06-01 10:00")

    first = ingest_batch(engine, program, order)
    again = ingest_batch(engine, program, order, order)

    assert (first.accepted, again.duplicate) == (1, 2)
    assert ledger(engine, "m-1") == [("earn", "purchase", 828)]


def test_a_registration_sent_again_under_a_new_event_id_earns_the_welcome_once(
    engine: Engine, program: Any
) -> None:
    replay(
        engine,
        program,
        registered("m-1", "2026-06-01 10:00"),
        registered("m-1", "2026-06-01 10:05"),
    )

    assert ledger(engine, "m-1") == [("earn", "welcome", 200)]


def test_a_handler_called_twice_with_the_same_event_credits_once(
    engine: Engine, program: Any
) -> None:
    shared_event = event(shared("m-1", "2026-06-01 10:00"))

    for _ in range(2):
        with engine.begin() as conn:
            ctx = HandlerContext(conn=conn, now=at("2026-06-01 10:00"), program=program)
            process_activity(ctx, [shared_event], program=program)

    assert ledger(engine, "m-1") == [("earn", "share", 10)]


def test_award_points_credits_once_per_key_available_at_once(engine: Engine, program: Any) -> None:
    now = at("2026-06-01 10:00")
    with engine.begin() as conn:
        first = award_points(
            conn,
            "m-1",
            500,
            reason="referral",
            idempotency_key="j-1:step-1",
            now=now,
            program=program,
        )
        second = award_points(
            conn,
            "m-1",
            500,
            reason="referral",
            idempotency_key="j-1:step-1",
            now=now,
            program=program,
        )

    assert not first.duplicate and second.duplicate
    assert points(engine, "m-1", "2026-06-01 10:00") == (500, 0)
    with engine.connect() as conn:
        expires = conn.execute(select(points_lots.c.expires_at)).scalar_one()
    assert expires == at("2028-06-01 00:00")  # the end of the business day 730 days later


def test_events_without_a_program_earn_nothing(engine: Engine) -> None:
    ingest_batch(engine, None, paid("m-1", "o-1", "828.00", "2026-06-01 10:00"))

    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(points_ledger)).scalar() == 0
