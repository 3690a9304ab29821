"""The demo's loyalty part: tier counts and moves, points totals, top spenders and referrals,
read set-based, agree with what ``members show`` says of each member."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from loyalty_shop import at, paid, refunded, registered
from loyalty_shop import replay as ingest_history
from rich.console import Console
from sqlalchemy import Engine, event, select

import worker
from core.clock import FixedClock, using_clock
from core.events.tables import members
from core.runtime import Runtime, set_runtime
from core.settings import Settings
from core.ticking import replay, tick
from loyalty.demo_summary import points_totals
from loyalty.jobs import loyalty_jobs
from loyalty.member_view import fetch_loyalty, print_demo_summary
from loyalty.redemption import redeem_points

NOW = at("2026-08-02 00:00")  # the moves counted: (07-19 00:00, 08-02 00:00]
CHECKOUT = at("2026-08-01 12:00")


@pytest.fixture
def runtime(db_url: str, engine: Engine, examples: Path, program: Any) -> Iterator[Runtime]:
    settings = Settings(
        _env_file=None,
        database_url=db_url,
        redis_url=None,  # type: ignore[call-arg]
        program_dir=examples / "program",
    )
    worker.setup(settings)
    runtime = Runtime(settings=settings, _program=program)
    set_runtime(runtime)
    yield runtime


def play(runtime: Runtime, *payloads: dict[str, Any]) -> None:
    """The events as ``events ingest --replay`` plays them: the daily jobs fire in between."""
    lines = [json.dumps(p) for p in sorted(payloads, key=lambda p: p["occurred_at"])]
    with using_clock(FixedClock(NOW)):
        replay(runtime, loyalty_jobs(runtime), lines, source="test")


def redeem(runtime: Runtime, member: str, points: int, order: str, total: str) -> None:
    with runtime.engine.begin() as conn:
        redeem_points(
            conn,
            member,
            points,
            order_id=order,
            order_total=Decimal(total),
            now=CHECKOUT,
            program=runtime.program,
        )


@pytest.fixture
def shop(runtime: Runtime, engine: Engine) -> Runtime:
    """Ten members over two years, the last ten weeks with every daily job firing."""
    ingest_history(
        engine,
        runtime.program,
        registered("m-lin", "2024-05-20 10:00", first_name="Lin", referral_code="LINTEA"),
        paid("m-lin", "o-l1", "5000.00", "2025-06-01 10:00"),  # bud; down on 08-01 03:00
        registered("m-dee", "2025-07-01 10:00", first_name="Dee"),
        paid("m-dee", "o-d1", "3500.00", "2025-07-10 10:00"),  # bud; below it from 2026-07-11
    )
    play(
        runtime,
        registered("m-mei", "2026-05-25 10:00", first_name="Mei", referred_by="LINTEA"),
        paid("m-mei", "o-m1", "300.00", "2026-05-26 10:00"),  # the referral settles on 06-11
        registered("m-ann", "2026-06-01 10:00", first_name="Ann"),
        registered("m-bob", "2026-06-01 10:00", first_name="Bob"),
        registered("m-cy", "2026-06-01 10:00", first_name="Cy"),
        registered("m-hu", "2026-06-01 10:00", first_name="Hu", referred_by="LINTEA"),
        paid("m-hu", "o-h1", "100.00", "2026-06-03 10:00"),  # below the referral's minimum
        paid("m-bob", "o-b1", "900.00", "2026-06-05 10:00"),
        paid("m-cy", "o-c1", "1000.00", "2026-06-05 10:00"),
        registered("m-fay", "2026-06-09 10:00", first_name="Fay"),
        paid("m-fay", "o-f1", "9000.00", "2026-06-10 10:00"),  # oolong, before the fortnight
        registered("m-gil", "2026-07-20 10:00", first_name="Gil", referred_by="NOPE99"),
        paid("m-ann", "o-a1", "4000.00", "2026-07-25 10:00"),  # bud, in the fortnight
        registered("m-ivy", "2026-07-25 10:00", first_name="Ivy", referred_by="LINTEA"),
        paid("m-ivy", "o-i1", "200.00", "2026-07-26 10:00"),  # qualifies, settles on 08-10
    )
    with using_clock(FixedClock(NOW)):
        tick(runtime, loyalty_jobs(runtime), until=CHECKOUT)
    redeem(runtime, "m-bob", 500, "o-b2", "600.00")
    redeem(runtime, "m-cy", 1100, "o-c2", "200.00")  # spends o-c1's points
    play(
        runtime,
        paid("m-bob", "o-b2", "600.00", "2026-08-01 12:00", points_redeemed=500),
        paid("m-cy", "o-c2", "200.00", "2026-08-01 12:00", points_redeemed=1100),
        refunded("m-bob", "o-b2", "600.00", "2026-08-01 13:00"),  # the 500 redeemed come back
        refunded("m-bob", "o-b1", "300.00", "2026-08-01 13:00"),
        refunded("m-cy", "o-c1", "1000.00", "2026-08-01 13:00"),  # spent: mostly owed
    )
    with using_clock(FixedClock(NOW)):
        tick(runtime, loyalty_jobs(runtime), until=NOW)
    return runtime


def shown(runtime: Runtime, *, width: int = 100) -> str:
    console = Console(record=True, width=width)
    with using_clock(FixedClock(NOW)):
        print_demo_summary(runtime, console)
    return console.export_text()


def views(runtime: Runtime) -> dict[str, dict[str, Any]]:
    """What ``members show`` says of each member."""
    with runtime.engine.connect() as conn:
        ids = conn.execute(select(members.c.member_id)).scalars().all()
        return {m: fetch_loyalty(conn, m, NOW, runtime.program) for m in ids}


def test_tiers_show_who_is_in_each_who_moved_in_the_fortnight_and_who_is_in_grace(
    shop: Runtime,
) -> None:
    text = shown(shop)

    rows = {line.split()[0]: line.split()[-4:] for line in text.splitlines()[2:6]}
    assert rows == {
        "leaf": ["7", "0", "1", "0"],  # Lin moved down on 08-01
        "bud": ["2", "1", "0", "1"],  # Ann moved up on 07-25; Dee waits out the grace
        "oolong": ["1", "0", "0", "0"],  # Fay moved up before the fortnight
        "puer": ["0", "0", "0", "0"],
    }
    assert Counter(v["tier"] for v in views(shop).values()) == {"leaf": 7, "bud": 2, "oolong": 1}
    assert [v["tier"] for v in views(shop).values() if v["downgrade"]] == ["bud"]
    assert "leaf    Green Leaf" in text and "puer    Vintage Pu-erh" in text


def test_the_points_totals_are_the_members_points_added_up(shop: Runtime) -> None:
    text = shown(shop)

    totals = points_shown(text)
    seen = [v["points"] for v in views(shop).values()]
    assert totals["usable"] == sum(p["balance"] for p in seen)
    assert totals["pending"] == sum(p["pending"] for p in seen) > 0
    assert totals["owed"] == sum(p["debt"] for p in seen) > 0
    assert (totals["redeemed"], totals["refunds gave back"]) == (1600, 500)
    assert totals["refunds took back"] == 600 + 300 + 1000  # o-b2 whole, o-b1 a third, o-c1
    assert totals["expired"] == 200  # Lin's welcome points, 730 days after 2024-05-20
    held = totals["usable"] + totals["pending"] + totals.get("due to expire", 0)
    assert held == (
        totals["earned"] + totals["awarded"] + totals["adjusted"] - totals["redeemed"]
        + totals["refunds gave back"] - totals["refunds took back"] + totals["owed"]
        - totals["expired"]
    )  # fmt: skip


def test_the_top_members_are_the_five_highest_spenders_with_their_points(
    shop: Runtime,
) -> None:
    text = shown(shop)

    top = [line.split() for line in text.splitlines() if line.startswith("m-")]
    by_spend = sorted(
        views(shop).items(), key=lambda item: (-Decimal(item[1]["qualifying_spend"]), item[0])
    )
    assert [row[0] for row in top] == ["m-fay", "m-ann", "m-bob", "m-mei", "m-cy"]
    assert [row[0] for row in top] == [member for member, _ in by_spend[:5]]
    for (member, name, tier, spend, balance, pending), (_, view) in zip(
        top, by_spend, strict=False
    ):
        assert (name, tier) == (member.removeprefix("m-").title(), view["tier"])
        assert Decimal(spend.replace(",", "")) == Decimal(view["qualifying_spend"])
        assert (int(balance.replace(",", "")), int(pending.replace(",", ""))) == (
            view["points"]["balance"],
            view["points"]["pending"],
        )
    assert "m-fay   Fay   oolong  9,000.00" in text  # thousands separators, two places


def test_referrals_are_counted_by_outcome(shop: Runtime) -> None:
    text = shown(shop)

    assert "referrals  4: settled 1, qualified and settling 1, awaiting a first order 1" in text
    assert "rejected 1: first_order_below_minimum 1" in text


def test_the_section_fits_an_80_column_terminal_and_reads_with_a_handful_of_queries(
    shop: Runtime,
) -> None:
    queries: list[str] = []

    def count(*args: Any) -> None:
        queries.append(args[2])

    event.listen(shop.engine, "before_cursor_execute", count)
    try:
        text = shown(shop, width=80)
    finally:
        event.remove(shop.engine, "before_cursor_execute", count)
    lines = text.rstrip("\n").splitlines()

    assert len(lines) <= 20
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert len(queries) <= 12  # the same for ten members as for a million


def test_without_a_program_the_points_and_referrals_still_show(
    runtime: Runtime, db_url: str, engine: Engine
) -> None:
    ingest_history(
        engine,
        runtime.program,
        registered("m-ann", "2026-07-01 10:00"),
        paid("m-ann", "o-a1", "400.00", "2026-07-02 10:00"),
    )
    settings = Settings(_env_file=None, database_url=db_url, program_dir=Path("/nonexistent"))  # type: ignore[call-arg]

    text = shown(Runtime(settings=settings))

    assert text.splitlines()[0] == "loyalty  no program: no tiers or qualifying spend to show"
    assert (points_shown(text)["earned"], points_shown(text)["usable"]) == (600, 600)
    assert "referrals  0: settled 0" in text


def test_points_entries_of_every_kind_count_where_they_belong() -> None:
    totals = points_totals(
        [
            ("earn", "purchase", 1000, 0),
            ("earn", "welcome", 200, 0),
            ("earn", "award", 50, 0),
            ("adjust", "operator", -30, 0),
            ("redeem", "checkout", -600, 0),
            ("reverse", "refund-restore", 100, 0),
            ("reverse", "refund", -300, 200),  # 500 taken back, 200 of them owed
            ("reverse", "debt-repayment", -150, -150),
            ("expire", None, -70, 0),
        ],
        lots={"usable": 100, "pending": 50},
        owed=50,
    )

    assert (totals.earned, totals.awarded, totals.adjusted) == (1200, 50, -30)
    assert (totals.redeemed, totals.given_back, totals.taken_back) == (600, 100, 500)
    assert (totals.expired, totals.owed, totals.other) == (70, 50, 0)
    assert (totals.usable, totals.pending, totals.due_to_expire) == (100, 50, 0)


def points_shown(text: str) -> dict[str, int]:
    block = text[text.index("points  ") : text.index("referrals  ")]
    return {
        label: int(number.replace(",", ""))
        for label, number in re.findall(r"([a-z]+(?: [a-z]+)*)\s+(-?[\d,]+)(?=\s|$)", block)
        if label != "points"
    }
