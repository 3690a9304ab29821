"""Refunds reconciled a batch at a time give what reconciling them one by one gives."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from loyalty_shop import at, event, ingest_batch, paid, refunded, replay
from sqlalchemy import Engine, select

from core.events.projections import apply_projections
from loyalty.activity import Reconcile, write_rounds
from loyalty.earning import Credit
from loyalty.errors import LedgerConflict
from loyalty.ledger import apply_entry_moves
from loyalty.points import award_points, fetch_points
from loyalty.redemption import redeem_points
from loyalty.refund_plan import plan_reconciliations
from loyalty.refund_store import fetch_order_totals, fetch_refund_facts, write_reconciliations
from loyalty.refunds import reconcile_orders
from loyalty.tables import points_ledger, points_lots


@pytest.fixture(autouse=True)
def _batches_stay_whole(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A handler that fails on a batch is retried one event at a time, which would hide a batch
    that went wrong: every batch here must succeed as a whole."""
    caplog.set_level(logging.WARNING, logger="core.events.failures")
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    failed = [r.getMessage() for r in records if r.name == "core.events.failures"]
    assert not failed, failed


@dataclass(frozen=True)
class Request:
    order_id: str
    trigger: str
    at: datetime


def balance(engine: Engine, member: str, when: str) -> tuple[int, int, int]:
    with engine.connect() as conn:
        view = fetch_points(conn, member, now=at(when))
    return view.balance, view.pending, view.debt


def reversals(engine: Engine, member: str) -> list[tuple[str, int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(points_ledger.c.rule_id, points_ledger.c.points, points_ledger.c.debt)
            .where(points_ledger.c.member_id == member, points_ledger.c.kind == "reverse")
            .order_by(points_ledger.c.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def lots_by_size(engine: Engine) -> dict[int, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(points_lots.c.points, points_lots.c.remaining)).all())


def award(engine: Engine, program: Any, member: str, points: int, key: str, when: str) -> None:
    with engine.begin() as conn:
        award_points(
            conn, member, points, reason="t", idempotency_key=key, now=at(when), program=program
        )


def redeem(engine: Engine, program: Any, member: str, points: int, order: str, when: str) -> None:
    with engine.begin() as conn:
        redeem_points(
            conn,
            member,
            points,
            order_id=order,
            order_total=Decimal("5000.00"),
            now=at(when),
            program=program,
        )


def test_a_members_refunds_in_one_batch_see_the_lots_as_the_previous_one_left_them(
    engine: Engine, program: Any
) -> None:
    replay(
        engine,
        program,
        paid("m-1", "o-1", "1000.00", "2026-06-01 10:00"),
        paid("m-1", "o-2", "500.00", "2026-06-02 10:00"),
    )
    award(engine, program, "m-1", 300, "g-1", "2026-06-18 09:00")
    redeem(engine, program, "m-1", 1200, "o-9", "2026-06-18 10:00")  # o-1's 1000, 200 of o-2's

    ingest_batch(
        engine,
        program,
        refunded("m-1", "o-1", "1000.00", "2026-06-20 10:00"),
        refunded("m-1", "o-2", "500.00", "2026-06-20 10:05"),
    )

    # o-1's take-back empties o-2's lot and the award, then owes 400; o-2's finds them empty
    assert reversals(engine, "m-1") == [("refund", -600, 400), ("refund", 0, 500)]
    assert balance(engine, "m-1", "2026-06-28 10:00") == (0, 0, 900)


@pytest.mark.parametrize(
    ("order_at", "expected"),
    [
        # the refund owes what was spent; the later order pays the debt first
        ("2026-06-20 11:00", [("refund", 0, 1000), ("debt-repayment", -1000, -1000)]),
        # the earlier order's pending points cover the take-back: nothing is owed
        ("2026-06-20 09:00", [("refund", -1000, 0)]),
    ],
)
def test_a_refund_and_an_order_of_the_same_member_in_one_batch_see_each_other_in_time_order(
    engine: Engine, program: Any, order_at: str, expected: list[tuple[str, int, int]]
) -> None:
    replay(engine, program, paid("m-1", "o-1", "1000.00", "2026-06-01 10:00"))
    redeem(engine, program, "m-1", 1000, "o-9", "2026-06-17 10:00")

    ingest_batch(
        engine,
        program,
        refunded("m-1", "o-1", "1000.00", "2026-06-20 10:00"),
        paid("m-1", "o-2", "1500.00", order_at),
        # another member's steps in between change nothing for m-1
        paid("m-2", "o-20", "300.00", "2026-06-20 09:30"),
        refunded("m-2", "o-20", "300.00", "2026-06-20 10:30"),
    )

    assert reversals(engine, "m-1") == expected
    assert balance(engine, "m-1", "2026-07-06 10:00") == (500, 0, 0)
    assert reversals(engine, "m-2") == [("refund", -300, 0)]


def test_a_refund_delivered_again_takes_nothing_back_twice(engine: Engine, program: Any) -> None:
    replay(engine, program, paid("m-1", "o-1", "1000.00", "2026-06-01 10:00"))
    refund = refunded("m-1", "o-1", "400.00", "2026-06-03 10:00", event_id="r-1")

    ingest_batch(engine, program, refund, refund)
    report = ingest_batch(engine, program, refund)

    assert report.accepted == 0
    assert reversals(engine, "m-1") == [("refund", -400, 0)]


def test_a_reconciliation_already_recorded_applies_nothing_while_a_new_one_takes_its_share(
    engine: Engine, program: Any
) -> None:
    replay(
        engine,
        program,
        paid("m-1", "o-1", "1000.00", "2026-06-01 10:00"),
        refunded("m-1", "o-1", "400.00", "2026-06-03 10:00", event_id="r-1"),
    )
    now = at("2026-06-04 10:00")
    with engine.begin() as conn:  # r-2 is stored, not yet reconciled
        apply_projections(
            conn,
            [event(refunded("m-1", "o-1", "300.00", "2026-06-04 10:00", event_id="r-2"))],
            now=now,
        )
    again = [Request("o-1", "r-1", at("2026-06-03 10:00")), Request("o-1", "r-2", now)]

    for _ in range(2):
        with engine.begin() as conn:
            reconcile_orders(conn, again, now=now)

    assert reversals(engine, "m-1") == [("refund", -400, 0), ("refund", -300, 0)]
    assert balance(engine, "m-1", "2026-06-20 10:00") == (300, 0, 0)


def test_an_entry_whose_key_was_recorded_meanwhile_moves_no_points(
    engine: Engine, program: Any
) -> None:
    replay(
        engine,
        program,
        paid("m-1", "o-1", "1000.00", "2026-06-01 10:00"),
        refunded("m-1", "o-1", "400.00", "2026-06-03 10:00", event_id="r-1"),
    )
    now = at("2026-06-04 10:00")
    with engine.begin() as conn:
        apply_projections(
            conn,
            [event(refunded("m-1", "o-1", "300.00", "2026-06-04 10:00", event_id="r-2"))],
            now=now,
        )
        facts = fetch_refund_facts(conn, fetch_order_totals(conn, ["o-1"]), now=now)
        blind = replace(facts, recorded=frozenset())  # as if takeback:r-1 were not recorded yet
        plan = plan_reconciliations([Request("o-1", "r-1", now)], blind, now=now)
        debts: dict[str, int] = {}
        write_reconciliations(conn, plan.entries, now=now, debts=debts)

    assert [e.draft.points for e in plan.entries] == [-300]
    assert reversals(engine, "m-1") == [("refund", -400, 0)]
    assert lots_by_size(engine) == {1000: 600}


def test_full_and_partial_refunds_in_one_batch_restore_and_take_back_in_proportion(
    engine: Engine, program: Any
) -> None:
    award(engine, program, "m-1", 300, "a-1", "2026-01-01 10:00")
    award(engine, program, "m-1", 500, "a-2", "2026-02-01 10:00")
    redeem(engine, program, "m-1", 600, "o-1", "2026-06-01 09:00")  # 300 + 300 of the 500
    replay(
        engine,
        program,
        paid("m-1", "o-1", "1000.00", "2026-06-01 10:00", points_redeemed=600),
        paid("m-1", "o-2", "800.00", "2026-06-02 10:00"),
        paid("m-1", "o-3", "200.00", "2026-06-02 11:00"),
    )

    ingest_batch(
        engine,
        program,
        refunded("m-1", "o-1", "500.00", "2026-06-03 10:00"),  # half: 300 back, 500 taken
        refunded("m-1", "o-2", "300.00", "2026-06-03 10:01"),  # o-2 in full, in two refunds
        refunded("m-1", "o-2", "500.00", "2026-06-03 10:02"),
        refunded("m-1", "o-3", "50.00", "2026-06-03 10:03"),  # a quarter of o-3
    )

    # o-2's first reconciliation sees both its refunds; its second finds nothing left to do
    assert reversals(engine, "m-1") == [
        ("refund-restore", 300, 0),
        ("refund", -500, 0),
        ("refund", -800, 0),
        ("refund", -50, 0),
    ]
    # the 300 come back to the latest-expiring lot the redemption drew on (the 500 lot)
    assert lots_by_size(engine) == {300: 0, 500: 500, 1000: 500, 800: 0, 200: 150}


def test_a_refund_before_its_order_is_reconciled_when_the_order_arrives_in_a_later_batch(
    engine: Engine, program: Any
) -> None:
    ingest_batch(engine, program, refunded("m-1", "o-1", "414.00", "2026-06-03 10:00"))
    assert reversals(engine, "m-1") == []

    ingest_batch(
        engine,
        program,
        paid("m-1", "o-1", "828.00", "2026-06-01 10:00"),
        paid("m-1", "o-2", "300.00", "2026-06-02 10:00"),
        refunded("m-1", "o-2", "300.00", "2026-06-04 10:00"),
        now=at("2026-06-04 10:00"),
    )

    assert reversals(engine, "m-1") == [("refund", -414, 0), ("refund", -300, 0)]
    assert balance(engine, "m-1", "2026-06-20 10:00") == (414, 0, 0)


def test_a_refund_dated_before_its_order_in_the_same_batch_is_reconciled_after_the_order(
    engine: Engine, program: Any
) -> None:
    ingest_batch(
        engine,
        program,
        refunded("m-1", "o-1", "414.00", "2026-06-01 09:00"),
        paid("m-1", "o-1", "828.00", "2026-06-01 10:00"),
    )

    assert reversals(engine, "m-1") == [("refund", -414, 0)]
    assert balance(engine, "m-1", "2026-06-20 10:00") == (414, 0, 0)


def test_refund_batches_of_one_member_ingested_at_once_take_back_each_share_once(
    pg_engine: Engine, program: Any
) -> None:
    replay(
        pg_engine,
        program,
        *(paid("m-1", f"o-{i}", "100.00", f"2026-06-01 1{i}:00") for i in range(5)),
    )
    start = threading.Barrier(4)

    def ingest(i: int) -> None:
        start.wait()
        ingest_batch(
            pg_engine,
            program,
            refunded("m-1", f"o-{i + 1}", "100.00", "2026-06-03 10:00", event_id=f"r-{i}"),
            refunded("m-1", "o-0", "50.00", "2026-06-03 10:00", event_id="r-same"),
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(ingest, range(4)))

    assert sorted(reversals(pg_engine, "m-1")) == [("refund", -100, 0)] * 4 + [("refund", -50, 0)]
    assert balance(pg_engine, "m-1", "2026-06-05 10:00") == (0, 50, 0)


@pytest.mark.parametrize("points", [-1001, 1], ids=["more than it holds", "beyond its points"])
def test_bulk_moves_a_lot_cannot_take_are_a_ledger_conflict_naming_the_lot(
    engine: Engine, program: Any, points: int
) -> None:
    replay(engine, program, paid("m-1", "o-1", "1000.00", "2026-06-01 10:00"))
    with engine.connect() as conn:
        lot_id, entry_id = conn.execute(select(points_lots.c.id, points_lots.c.entry_id)).one()

    with pytest.raises(LedgerConflict, match=f"lot {lot_id} "), engine.begin() as conn:
        apply_entry_moves(
            conn, {entry_id: [(lot_id, -400)], entry_id + 1: [(lot_id, points + 400)]}
        )

    assert lots_by_size(engine) == {1000: 1000}


def credit(member: str, key: str) -> Credit:
    when = at("2026-06-01 10:00")
    return Credit(member, 10, "purchase", "t", key, when, when, None)


@pytest.mark.parametrize(
    ("steps", "rounds"),
    [
        ([], []),
        (["a:c1", "a:c2"], [["a:c1", "a:c2"]]),
        (["a:r1"], [[], ["a:r1"]]),
        # each member's steps in order; other members' steps join the earliest round they can
        (
            ["a:c1", "a:r1", "b:r2", "a:c2", "b:c3", "c:c4", "a:r3"],
            [["a:c1", "c:c4"], ["a:r1", "b:r2"], ["a:c2", "b:c3"], ["a:r3"]],
        ),
    ],
)
def test_a_plan_is_written_in_rounds_that_keep_each_members_steps_in_order(
    steps: list[str], rounds: list[list[str]]
) -> None:
    def step(text: str) -> Credit | Reconcile:
        member, name = text.split(":")
        if name.startswith("c"):
            return credit(member, text)
        return Reconcile(f"order-{name}", text, at("2026-06-01 10:00"))

    def name(s: Credit | Reconcile) -> str:
        return s.trigger if isinstance(s, Reconcile) else s.idempotency_key

    members = {text: text.split(":")[0] for text in steps if ":r" in text}

    written = write_rounds([step(text) for text in steps], members)

    assert [[name(s) for s in part] for part in written] == rounds
