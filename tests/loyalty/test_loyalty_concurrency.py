"""Against PostgreSQL, many connections at once: the balance never goes below zero and nothing
is credited twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from loyalty_shop import at, ingest_batch, paid
from sqlalchemy import Engine, func, select

from loyalty.errors import InsufficientPoints
from loyalty.points import award_points, fetch_points
from loyalty.redemption import Redemption, redeem_points
from loyalty.tables import points_ledger

NOW = at("2026-06-01 10:00")


def all_at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together; results or exceptions."""
    start = threading.Barrier(count)

    def run(index: int) -> Any:
        start.wait()
        try:
            return work(index)
        except Exception as exc:  # the outcome under test, success or refusal
            return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_concurrent_redemptions_beyond_the_balance_leave_it_at_or_above_zero(
    pg_engine: Engine, program: Any
) -> None:
    with pg_engine.begin() as conn:
        for key in range(4):
            award_points(
                conn,
                "m-1",
                1250,
                reason="t",
                idempotency_key=str(key),
                now=at(f"2026-0{key + 1}-01 10:00"),
                program=program,
            )

    def redeem(index: int) -> Redemption:
        with pg_engine.begin() as conn:
            return redeem_points(
                conn,
                "m-1",
                750,
                order_id=f"o-{index}",
                order_total=Decimal("1000.00"),
                now=NOW,
                program=program,
            )

    outcomes = all_at_once(20, redeem)

    done = [o for o in outcomes if isinstance(o, Redemption)]
    refused = [o for o in outcomes if isinstance(o, InsufficientPoints)]
    assert (len(done), len(refused)) == (6, 14)
    with pg_engine.connect() as conn:
        recorded = (
            conn.execute(select(points_ledger.c.order_id).where(points_ledger.c.kind == "redeem"))
            .scalars()
            .all()
        )
        assert fetch_points(conn, "m-1", now=NOW).balance == 500
    assert sorted(recorded) == sorted(r.order_id for r in done)


def test_the_same_award_key_from_two_workers_at_once_credits_once(
    pg_engine: Engine, program: Any
) -> None:
    def award(_: int) -> Any:
        with pg_engine.begin() as conn:
            return award_points(
                conn, "m-1", 500, reason="referral", idempotency_key="j-9", now=NOW, program=program
            )

    outcomes = all_at_once(8, award)

    assert sorted(o.duplicate for o in outcomes) == [False] + [True] * 7
    with pg_engine.connect() as conn:
        assert fetch_points(conn, "m-1", now=NOW).balance == 500


def test_the_same_order_event_ingested_by_two_workers_at_once_earns_once(
    pg_engine: Engine, program: Any
) -> None:
    order = paid("m-1", "o-1", "828.00", "2026-06-01 10:00")

    reports = all_at_once(4, lambda _: ingest_batch(pg_engine, program, order))

    assert sorted(r.accepted for r in reports) == [0, 0, 0, 1]
    with pg_engine.connect() as conn:
        earned = conn.execute(select(func.sum(points_ledger.c.points))).scalar()
    assert earned == 828
