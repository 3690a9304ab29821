"""Points are bounded per operation and per balance, in 64-bit columns, on both databases.

An operation that names its points (adjust, award, redeem) is refused beyond a bound with a
clear error; what a rule earns is cut to the bound and the entry says how much was withheld.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from loyalty_shop import at, ingest_batch, paid, registered
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from core.bounds import MAX_POINTS_BALANCE, MAX_POINTS_PER_OPERATION
from core.cli import app
from core.events.tables import orders
from loyalty import limits
from loyalty.earning import Credit
from loyalty.errors import InvalidPoints, PointsLimitExceeded
from loyalty.expiry import expire_points
from loyalty.limits import fit_credits
from loyalty.points import adjust_points, award_points, fetch_points
from loyalty.redemption import check_redemption
from loyalty.tables import points_ledger

NOW = at("2026-11-05 12:00")
TOO_MANY = [MAX_POINTS_PER_OPERATION + 1, 2_147_483_648, 9_223_372_036_854_775_807, 10**23]


def _credit(member: str, points: int, key: str) -> Credit:
    return Credit(member, points, "purchase", "order", key, NOW, NOW, None)


@pytest.mark.parametrize(
    ("balances", "asked", "credited", "withheld_by"),
    [
        ({}, [500], [500], [None]),
        ({}, [MAX_POINTS_PER_OPERATION + 5], [MAX_POINTS_PER_OPERATION], ["per operation"]),
        (
            {"m-1": MAX_POINTS_BALANCE - 300},
            [200, 200, 200],
            [200, 100, 0],
            [None, "balance", "balance"],
        ),
        ({"m-1": MAX_POINTS_BALANCE}, [1], [0], ["balance"]),
    ],
)
def test_an_earn_is_cut_to_the_bounds_in_order_and_says_what_it_withheld(
    balances: dict[str, int], asked: list[int], credited: list[int], withheld_by: list[str | None]
) -> None:
    credits = [_credit("m-1", points, f"k-{n}") for n, points in enumerate(asked)]

    fitted = fit_credits(credits, balances)

    assert [c.points for c in fitted] == credited
    for credit, original, bound in zip(fitted, credits, withheld_by, strict=False):
        if bound is None:
            assert credit == original
        else:
            assert credit.details["withheld"] == original.points - credit.points
            assert bound in credit.details["withheld_by"]
            assert "points withheld" in credit.reason


@pytest.mark.parametrize("points", TOO_MANY)
def test_a_redemption_beyond_one_operation_is_refused_before_any_rule(
    points: int, program: Any
) -> None:
    rules = program.program_file.points.redeem
    with pytest.raises(PointsLimitExceeded, match="one operation moves at most 1,000,000,000"):
        check_redemption(points, Decimal("828.00"), rules)


def test_an_order_total_beyond_any_event_amount_is_refused(program: Any) -> None:
    rules = program.program_file.points.redeem
    with pytest.raises(InvalidPoints, match=r"at most 99999999999999\.99"):
        check_redemption(100, Decimal("1E+20"), rules)


def _member(engine: Engine, program: Any, member: str = "m-1") -> None:
    ingest_batch(engine, program, registered(member, "2026-11-01 10:00"))


def _entries(engine: Engine, member: str = "m-1") -> list[Any]:
    with engine.connect() as conn:
        query = select(points_ledger).where(points_ledger.c.member_id == member)
        return list(conn.execute(query.order_by(points_ledger.c.id)))


@pytest.mark.parametrize("points", [*TOO_MANY, -MAX_POINTS_PER_OPERATION - 1])
def test_an_adjustment_beyond_one_operation_is_refused_and_writes_nothing(
    engine: Engine, program: Any, points: int
) -> None:
    _member(engine, program)
    before = _entries(engine)

    refused = pytest.raises(PointsLimitExceeded, match="split it into several operations")
    with refused, engine.begin() as conn:
        adjust_points(conn, "m-1", points, reason="x", now=NOW, program=program)

    assert _entries(engine) == before


def test_an_award_beyond_one_operation_is_refused(engine: Engine, program: Any) -> None:
    with pytest.raises(PointsLimitExceeded), engine.begin() as conn:
        award_points(
            conn,
            "m-1",
            MAX_POINTS_PER_OPERATION + 1,
            reason="x",
            idempotency_key="a-1",
            now=NOW,
            program=program,
        )


def test_credits_that_would_pass_the_balance_ceiling_are_refused(
    engine: Engine, program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_POINTS_BALANCE", 1_000)
    _member(engine, program)
    with engine.connect() as conn:
        held = fetch_points(conn, "m-1", now=NOW)
    room = 1_000 - held.balance - held.pending
    with engine.begin() as conn:
        adjust_points(conn, "m-1", room, reason="up to the ceiling", now=NOW, program=program)

    with pytest.raises(PointsLimitExceeded, match="holds 1,000 points"), engine.begin() as conn:
        adjust_points(conn, "m-1", 1, reason="one more", now=NOW, program=program)
    with pytest.raises(PointsLimitExceeded, match="at most 0 more"), engine.begin() as conn:
        award_points(conn, "m-1", 1, reason="x", idempotency_key="a-1", now=NOW, program=program)


def test_an_order_earning_past_the_ceiling_earns_up_to_it_and_records_the_rest(
    engine: Engine, program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_POINTS_BALANCE", 1_000)
    _member(engine, program)
    with engine.connect() as conn:
        held = fetch_points(conn, "m-1", now=NOW)

    ingest_batch(engine, program, paid("m-1", "o-1", "5000.00", "2026-11-05 11:00"))

    earned = [e for e in _entries(engine) if e.order_id == "o-1"]
    assert [e.points for e in earned] == [1_000 - held.balance - held.pending]
    assert earned[0].details["withheld"] == 5000 - earned[0].points


def test_the_largest_order_earns_one_operation_and_the_ledger_holds_64_bit_sums(
    engine: Engine, program: Any
) -> None:
    _member(engine, program)
    for n in range(3):
        order = paid("m-1", f"o-{n}", "99999999999999.99", f"2026-11-0{2 + n} 11:00")
        assert ingest_batch(engine, program, order).rejected == 0

    with engine.begin() as conn:  # expiry writes one entry of all three lots: 3 × 10^9
        expire_points(conn, as_of=NOW + timedelta(days=800), now=NOW + timedelta(days=800))

    entries = _entries(engine)
    earned = [e.points for e in entries if e.order_id]
    assert earned == [MAX_POINTS_PER_OPERATION] * 3
    assert min(e.points for e in entries if e.kind == "expire") <= -3 * MAX_POINTS_PER_OPERATION


def test_an_order_paid_with_impossible_points_redeemed_is_dead_lettered_not_a_db_error(
    engine: Engine, program: Any
) -> None:
    order = paid("m-1", "o-1", "100.00", "2026-11-05 11:00", points_redeemed=2**63 - 1)

    report = ingest_batch(engine, program, order)

    assert report.rejected == 1
    assert "points_redeemed" in report.rejections[0].reason
    with engine.connect() as conn:
        assert conn.execute(select(orders.c.order_id)).all() == []


def test_the_command_refuses_points_beyond_one_operation_in_one_line(cli_env: Path) -> None:
    runner = CliRunner()
    now = ["--now", "2026-11-05T12:00:00+08:00"]
    member = registered("m-1", "2026-11-01 10:00")
    (cli_env / "m.jsonl").write_text(json.dumps(member) + "\n", encoding="utf-8")
    assert runner.invoke(app, [*now, "events", "ingest", "m.jsonl"]).exit_code == 0

    result = runner.invoke(app, [*now, "points", "adjust", "m-1", "2147483648", "--reason", "typo"])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0
    assert "one operation moves at most 1,000,000,000 points" in result.stderr
