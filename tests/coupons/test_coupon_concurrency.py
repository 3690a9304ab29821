"""Limits hold under concurrency, on PostgreSQL: 50 threads, each on its own connection,
released at once by a barrier, race for the same code or the same budget."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from coupon_factories import NOW, cart, line, registered, send, with_coupons
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from core.program.loader import Program
from coupons.checkout import reserve_codes
from coupons.errors import CheckoutRefused
from coupons.limits import fetch_usage
from coupons.redemption import redeem_order
from coupons.wallet import fetch_wallet, issue_coupon

RACERS = 50
BUDGET_FOR_10 = {
    "id": "flash-20",
    "name": {"en": "Flash sale"},
    "discount": {"amount_off": 20},
    "limits": {"budget": 200},
}
BASKET = cart(line("tea", "100.00"))
Work = Callable[[Connection, int], bool]


@pytest.fixture
def shop(program: Program) -> Program:
    return with_coupons(program, BUDGET_FOR_10)


@pytest.fixture
def separate(pg_engine: Engine) -> Iterator[Engine]:
    """An engine without a pool: every thread gets a connection of its own."""
    engine = create_engine(pg_engine.url, poolclass=NullPool)
    yield engine
    engine.dispose()


def race(engine: Engine, work: Work) -> list[bool | Exception]:
    """Run ``work`` in RACERS threads, each in its own transaction, all started together."""
    barrier = threading.Barrier(RACERS)
    results: list[bool | Exception] = [False] * RACERS

    def run(index: int) -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            conn.rollback()
            barrier.wait()
            try:
                with conn.begin():
                    results[index] = work(conn, index)
            except Exception as exc:  # collected: the test says which kind it expects
                results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def issue_to(engine: Engine, program: Program, coupon_id: str, members: list[str]) -> list[str]:
    with engine.begin() as conn:
        return [
            issue_coupon(
                conn, program, coupon_id=coupon_id, member_id=m, now=NOW - timedelta(hours=1)
            ).code
            for m in members
        ]


def redeem(program: Program, member: Callable[[int], str], code: Callable[[int], str]) -> Work:
    def work(conn: Connection, index: int) -> bool:
        [outcome] = redeem_order(
            conn,
            program,
            member_id=member(index),
            order_id=f"o-{index}",
            codes=[code(index)],
            cart=BASKET,
            now=NOW,
        )
        return outcome.redeemed

    return work


def reserve(
    program: Program, member: Callable[[int], str], code: Callable[[int], str], **at: Any
) -> Work:
    def work(conn: Connection, index: int) -> bool:
        reserve_codes(
            conn,
            program,
            member_id=member(index),
            order_id=f"o-{index}",
            cart=BASKET,
            codes=[code(index)],
            now=at.get("now", NOW),
        )
        return True

    return work


@pytest.mark.parametrize("operation", [redeem, reserve])
def test_fifty_concurrent_uses_of_one_code_succeed_exactly_once(
    pg_engine: Engine, separate: Engine, shop: Program, operation: Callable[..., Work]
) -> None:
    send(pg_engine, shop, registered("m-1"))
    [code] = issue_to(pg_engine, shop, "free-shipping", ["m-1"])

    results = race(separate, operation(shop, lambda i: "m-1", lambda i: code))

    assert results.count(True) == 1
    assert all(r is False or isinstance(r, CheckoutRefused) for r in results if r is not True)


@pytest.mark.parametrize("operation", [redeem, reserve])
def test_fifty_concurrent_uses_of_a_budget_that_covers_ten_succeed_exactly_ten_times(
    pg_engine: Engine, separate: Engine, shop: Program, operation: Callable[..., Work]
) -> None:
    members = [f"m-{i}" for i in range(RACERS)]
    send(pg_engine, shop, *(registered(m) for m in members))
    codes = issue_to(pg_engine, shop, "flash-20", members)

    results = race(separate, operation(shop, lambda i: members[i], lambda i: codes[i]))

    assert results.count(True) == 10
    assert all(r is False or isinstance(r, CheckoutRefused) for r in results if r is not True)
    with pg_engine.connect() as conn:
        usage = fetch_usage(conn, "m-0", ["flash-20"])["flash-20"]
    assert (usage.used, usage.spent) == (10, Decimal("200.00"))


def test_lapsed_reservations_free_their_share_of_the_budget(
    pg_engine: Engine, separate: Engine, shop: Program
) -> None:
    members = [f"m-{i}" for i in range(RACERS + 10)]
    send(pg_engine, shop, *(registered(m) for m in members))
    codes = issue_to(pg_engine, shop, "flash-20", members)
    first, rest = race_sequentially_first_ten(pg_engine, shop, members, codes)
    later = NOW + timedelta(minutes=20)  # the first ten holds have lapsed

    results = race(separate, reserve(shop, lambda i: rest[i][0], lambda i: rest[i][1], now=later))

    assert first == 10
    assert results.count(True) == 10
    assert all(isinstance(r, CheckoutRefused) for r in results if r is not True)
    with pg_engine.connect() as conn:
        usage = fetch_usage(conn, "m-0", ["flash-20"])["flash-20"]
    assert (usage.used, usage.spent) == (10, Decimal("200.00"))


def race_sequentially_first_ten(
    engine: Engine, program: Program, members: list[str], codes: list[str]
) -> tuple[int, list[tuple[str, str]]]:
    """Reserve the budget full with the first ten members; return the other pairs."""
    work = reserve(program, lambda i: members[i], lambda i: codes[i])
    for index in range(10):
        with engine.begin() as conn:
            work(conn, index)
    return 10, list(zip(members[10:], codes[10:], strict=True))


def test_fifty_concurrent_issues_with_one_key_put_one_code_in_the_wallet(
    pg_engine: Engine, separate: Engine, shop: Program
) -> None:
    send(pg_engine, shop, registered("m-1"))
    codes: list[str] = [""] * RACERS

    def work(conn: Connection, index: int) -> bool:
        codes[index] = issue_coupon(
            conn,
            shop,
            coupon_id="first-brew-15",
            member_id="m-1",
            now=NOW,
            issue_key="first-brew:m-1",
        ).code
        return True

    results = race(separate, work)

    assert results.count(True) == RACERS
    assert len(set(codes)) == 1
    with pg_engine.connect() as conn:
        assert len(fetch_wallet(conn, "m-1")) == 1
