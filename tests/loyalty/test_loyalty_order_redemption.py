"""Points redeemed on order.paid: its points_redeemed leave the lots once (as `points redeem`),
a refusal is recorded and the order kept, the checkout's hold is consumed, a refund gives the
points back in proportion. Example program: 50 points = 1.00, at least 500, at most 30%."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from loyalty_shop import at, ingest_batch, paid, refunded, replay
from sqlalchemy import Engine, func, select
from test_loyalty_concurrency import all_at_once

from core.events.tables import orders
from core.events.validation import validate_event
from loyalty.errors import OrderAlreadyRedeemed
from loyalty.holds import fetch_held, hold_points
from loyalty.order_redemption import RedeemOrder, fetch_refusals, record_refusals, redeem_order
from loyalty.points import award_points, fetch_points
from loyalty.redemption import Redemption, redeem_points
from loyalty.tables import points_holds, points_ledger, points_refusals

PAID_AT = "2026-06-01 10:00"


def give(engine: Engine, program: Any, member: str, points: int, *, key: str = "gift") -> None:
    with engine.begin() as conn:
        award_points(conn, member, points, reason="gift", idempotency_key=key,
                     now=at("2026-05-01 10:00"), program=program)  # fmt: skip


def balance(engine: Engine, member: str) -> int:
    with engine.connect() as conn:
        return fetch_points(conn, member, now=at("2026-06-02 10:00")).balance


def redemptions(engine: Engine) -> list[tuple[str, int, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(points_ledger.c.order_id, points_ledger.c.points,
                   points_ledger.c.source_event_id)
            .where(points_ledger.c.kind == "redeem").order_by(points_ledger.c.order_id)
        )  # fmt: skip
        return [tuple(row) for row in rows]  # type: ignore[misc]


def refusals(engine: Engine) -> list[tuple[str, int, str]]:
    with engine.connect() as conn:
        return [(r.order_id, r.points, r.reason) for r in fetch_refusals(conn)]


def test_a_paid_order_redeems_its_points_redeemed_from_the_lots(
    engine: Engine, program: Any
) -> None:
    give(engine, program, "m-1", 2000)

    report = ingest_batch(engine, program, paid("m-1", "o-1", "388.00", PAID_AT,
                                                event_id="p-1", points_redeemed=600))  # fmt: skip

    assert redemptions(engine) == [("o-1", -600, "p-1")]
    assert balance(engine, "m-1") == 1400
    assert report.tally("points_refused") == 0
    with engine.connect() as conn:
        details = conn.execute(
            select(points_ledger.c.details).where(points_ledger.c.kind == "redeem")
        ).scalar_one()
    # 600 points pay 12.00 on top of the 388.00 paid: the share is of 400.00
    assert details["order_total"] == "400.00" and details["value"] == "12.00"
    assert details["paid"] == "388.00"


def test_the_order_may_use_points_up_to_the_share_of_what_it_cost_before_them(
    engine: Engine, program: Any
) -> None:
    give(engine, program, "m-1", 9000)

    # 30% of 100.00 is 30.00 = 1500 points; paid 70.00 after them
    replay(engine, program, paid("m-1", "o-1", "70.00", PAID_AT, points_redeemed=1500),
           paid("m-1", "o-2", "70.00", "2026-06-01 11:00", points_redeemed=1550))  # fmt: skip

    assert [(o, p) for o, p, _ in redemptions(engine)] == [("o-1", -1500)]
    assert refusals(engine) == [("o-2", 1550, "points.over_order_share")]


def test_redelivering_or_retrying_the_order_redeems_once(engine: Engine, program: Any) -> None:
    give(engine, program, "m-1", 2000)
    order = paid("m-1", "o-1", "388.00", PAID_AT, event_id="p-1", points_redeemed=600)
    ingest_batch(engine, program, order)

    again = ingest_batch(engine, program, order)
    step = RedeemOrder.of(validate_event(order))
    assert step is not None
    with engine.begin() as conn:  # a retried handler runs the step again
        outcome = redeem_order(conn, step, rules=program.program_file.points.redeem,
                               now=at("2026-06-01 10:05"))  # fmt: skip

    assert again.duplicate == 1 and outcome is None
    assert redemptions(engine) == [("o-1", -600, "p-1")]
    assert balance(engine, "m-1") == 1400 and refusals(engine) == []


def test_an_order_points_redeem_already_redeemed_is_not_redeemed_again(
    engine: Engine, program: Any
) -> None:
    give(engine, program, "m-1", 2000)
    with engine.begin() as conn:
        redeem_points(conn, "m-1", 600, order_id="o-1", order_total=Decimal("400.00"),
                      now=at("2026-06-01 09:59"), program=program)  # fmt: skip

    replay(engine, program, paid("m-1", "o-1", "388.00", PAID_AT, points_redeemed=600),
           paid("m-1", "o-2", "388.00", "2026-06-01 11:00", points_redeemed=500))  # fmt: skip
    with engine.begin() as conn:  # o-2 redeemed 500; `points redeem` of it says so
        step = RedeemOrder("m-1", "o-2", 700, Decimal("386.00"), "p-x", at(PAID_AT))
        other = redeem_order(conn, step, rules=program.program_file.points.redeem, now=at(PAID_AT))

    assert [(o, p) for o, p, _ in redemptions(engine)] == [("o-1", -600), ("o-2", -500)]
    assert balance(engine, "m-1") == 900
    assert other is not None and other.reason == "points.order_already_redeemed"
    assert "already redeemed 500 points" in other.message


def test_a_balance_too_small_is_a_recorded_refusal_and_the_order_is_kept(
    engine: Engine, program: Any
) -> None:
    give(engine, program, "m-1", 550)

    report = ingest_batch(engine, program, paid("m-1", "o-1", "388.00", PAID_AT,
                                                event_id="p-1", points_redeemed=600))  # fmt: skip

    assert report.accepted == 1 and report.tally("points_refused") == 1
    assert report.tally("handler_failed") == 0
    assert redemptions(engine) == [] and balance(engine, "m-1") == 550
    with engine.connect() as conn:
        [refusal] = fetch_refusals(conn, member_id="m-1")
        kept = conn.execute(select(orders.c.points_redeemed).where(orders.c.order_id == "o-1"))
        assert kept.scalar_one() == 600
        # the order still earned its points (pending for the return window)
        assert fetch_points(conn, "m-1", now=at(PAID_AT)).pending > 0
    assert (refusal.order_id, refusal.reason, refusal.event_id) == (
        "o-1", "points.insufficient", "p-1",
    )  # fmt: skip
    assert "has 550 available points, 600 were asked for" in refusal.message
    assert refusal.refused_at == at(PAID_AT)


def test_points_below_the_minimum_are_refused_with_the_rule(engine: Engine, program: Any) -> None:
    give(engine, program, "m-1", 2000)

    replay(engine, program, paid("m-1", "o-1", "388.00", PAID_AT, points_redeemed=499))

    assert refusals(engine) == [("o-1", 499, "points.below_minimum")]
    assert balance(engine, "m-1") == 2000


def test_points_earned_earlier_in_the_same_batch_pay_a_later_order_as_one_by_one(
    engine: Engine, program: Any
) -> None:
    give(engine, program, "m-1", 300, key="a")
    give(engine, program, "m-1", 300, key="b")

    ingest_batch(engine, program,
                 paid("m-1", "o-1", "388.00", PAID_AT, points_redeemed=600),
                 paid("m-1", "o-2", "388.00", "2026-06-01 11:00", points_redeemed=500))  # fmt: skip

    # the 600 are drawn by the first order; the second finds none left
    assert [(o, p) for o, p, _ in redemptions(engine)] == [("o-1", -600)]
    assert refusals(engine) == [("o-2", 500, "points.insufficient")]


def test_paying_the_order_consumes_its_checkout_hold(engine: Engine, program: Any) -> None:
    give(engine, program, "m-1", 2000)
    give(engine, program, "m-2", 2000, key="other")
    with engine.begin() as conn:
        reserved = at("2026-06-01 09:55")
        for member, order in [("m-1", "o-1"), ("m-1", "o-2"), ("m-2", "o-9")]:
            hold_points(conn, program, member, 600, order_id=order, total=Decimal("400.00"),
                        now=reserved, until=reserved + timedelta(minutes=15))  # fmt: skip

    replay(engine, program, paid("m-1", "o-1", "388.00", PAID_AT, points_redeemed=600),
           paid("m-1", "o-9", "400.00", "2026-06-01 10:01"))  # fmt: skip

    with engine.connect() as conn:
        left = conn.execute(select(points_holds.c.order_id).order_by("order_id")).scalars().all()
        held = fetch_held(conn, "m-1", now=at("2026-06-01 10:02"))
    # o-1's hold is consumed; o-2 still holds; o-9's hold is m-2's, not of m-1's order
    assert left == ["o-2", "o-9"] and held == 600
    assert balance(engine, "m-1") == 1400


def test_paying_without_the_points_held_drops_the_hold_too(engine: Engine, program: Any) -> None:
    give(engine, program, "m-1", 2000)
    with engine.begin() as conn:
        hold_points(conn, program, "m-1", 600, order_id="o-1", total=Decimal("400.00"),
                    now=at("2026-06-01 09:55"), until=at("2026-06-01 10:10"))  # fmt: skip

    replay(engine, program, paid("m-1", "o-1", "400.00", PAID_AT))

    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(points_holds)).scalar_one() == 0
    assert redemptions(engine) == []


@pytest.mark.parametrize(
    ("refunds", "back"),
    [
        (["194.00"], 300),  # half of what was paid: half the points
        (["388.00"], 600),  # all of it: all of them
        (["100.00", "288.00"], 600),  # in two refunds
        (["1.00"], 1),  # floor(600 × 1 / 388)
    ],
)
def test_a_refund_gives_back_the_redeemed_points_of_the_refunded_part(
    engine: Engine, program: Any, refunds: list[str], back: int
) -> None:
    give(engine, program, "m-1", 2000)
    events = [paid("m-1", "o-1", "388.00", PAID_AT, points_redeemed=600)]
    events += [refunded("m-1", "o-1", amount, f"2026-06-0{3 + i} 10:00")
               for i, amount in enumerate(refunds)]  # fmt: skip

    replay(engine, program, *events)

    with engine.connect() as conn:
        restored = conn.execute(
            select(func.sum(points_ledger.c.points)).where(
                points_ledger.c.rule_id == "refund-restore"
            )
        ).scalar_one()
    assert restored == back
    assert balance(engine, "m-1") == 1400 + back


def test_a_refund_in_the_batch_of_its_order_or_before_it_gives_the_points_back(
    engine: Engine, program: Any
) -> None:
    give(engine, program, "m-1", 2000)
    give(engine, program, "m-2", 2000, key="m-2")

    ingest_batch(engine, program,
                 paid("m-1", "o-1", "388.00", PAID_AT, points_redeemed=600),
                 refunded("m-1", "o-1", "388.00", "2026-06-01 12:00"))  # fmt: skip
    replay(engine, program, refunded("m-2", "o-2", "194.00", "2026-06-01 09:00"))
    replay(engine, program, paid("m-2", "o-2", "388.00", PAID_AT, points_redeemed=600))

    assert balance(engine, "m-1") == 2000
    assert balance(engine, "m-2") == 1700


def test_refusals_are_recorded_once_per_order(engine: Engine, program: Any) -> None:
    step = RedeemOrder("m-1", "o-1", 600, Decimal("388.00"), "p-1", at(PAID_AT))
    rules = program.program_file.points.redeem
    with engine.begin() as conn:
        refusal = redeem_order(conn, step, rules=rules, now=at(PAID_AT))
        assert refusal is not None
        first = record_refusals(conn, [refusal], now=at(PAID_AT))
        second = record_refusals(conn, [refusal], now=at("2026-06-01 10:05"))
        count = conn.execute(select(func.count()).select_from(points_refusals)).scalar_one()
    assert (first, second, count) == (1, 0, 1)


def test_workers_paying_orders_at_once_never_redeem_more_than_the_balance(
    pg_engine: Engine, program: Any
) -> None:
    give(pg_engine, program, "m-1", 1000)
    orders_paid = [paid("m-1", f"o-{i}", "388.00", PAID_AT, points_redeemed=600)
                   for i in range(8)]  # fmt: skip

    all_at_once(8, lambda i: ingest_batch(pg_engine, program, orders_paid[i]))

    [(won, points, _)] = redemptions(pg_engine)
    assert points == -600 and balance(pg_engine, "m-1") == 400
    refused = {order: reason for order, _, reason in refusals(pg_engine)}
    assert refused == {f"o-{i}": "points.insufficient" for i in range(8) if f"o-{i}" != won}


def test_points_redeem_and_the_paid_order_at_once_redeem_once(
    pg_engine: Engine, program: Any
) -> None:
    give(pg_engine, program, "m-1", 1000)
    order = paid("m-1", "o-1", "388.00", PAID_AT, points_redeemed=600)

    def by_hand() -> Any:
        with pg_engine.begin() as conn:
            return redeem_points(conn, "m-1", 600, order_id="o-1", order_total=Decimal("400.00"),
                                 now=at(PAID_AT), program=program)  # fmt: skip

    outcomes = all_at_once(2, lambda i: by_hand() if i else ingest_batch(pg_engine, program, order))

    assert [(o, p) for o, p, _ in redemptions(pg_engine)] == [("o-1", -600)]
    assert balance(pg_engine, "m-1") == 400 and refusals(pg_engine) == []
    # the hand redemption either came first or was told the order already redeemed
    assert isinstance(outcomes[1], Redemption | OrderAlreadyRedeemed)


def test_releasing_paid_holds_drops_exactly_the_pairs_given(engine: Engine) -> None:
    """Each (order, member) pair drops its hold; a hold of the same order id by another member,
    and other orders' holds, stay (one statement: DELETE … USING unnest on PostgreSQL)."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from loyalty.holds import release_paid_holds
    from loyalty.tables import points_holds

    at = datetime(2027, 1, 1, tzinfo=UTC)
    rows = [("o-1", "m-1"), ("o-2", "m-2"), ("o-3", "m-1"), ("o-4", "m-3")]
    with engine.begin() as conn:
        conn.execute(
            points_holds.insert(),
            [
                {"order_id": o, "member_id": m, "points": 10, "held_until": at, "created_at": at}
                for o, m in rows
            ],
        )
        dropped = release_paid_holds(conn, [("o-1", "m-1"), ("o-2", "m-1"), ("o-4", "m-3")])
        left = conn.execute(select(points_holds.c.order_id, points_holds.c.member_id)).all()

    assert dropped == 2
    assert sorted(map(tuple, left)) == [("o-2", "m-2"), ("o-3", "m-1")]
