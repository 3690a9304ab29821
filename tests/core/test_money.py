"""Money stays exact on both databases: stored, read, summed and compared to the cent.

SQLite keeps a NUMERIC as a float (99999999999999.99 would come back as …98), so core.db.Money
stores cents there; PostgreSQL keeps NUMERIC(18, 2). The same amounts and the same SQL must
give the same exact answers on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    Table,
    case,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import StatementError

from core.db import Money, bulk_insert, get_engine
from core.events.tables import orders, refunds

LARGEST = Decimal("99999999999999.99")
EXTREMES = [
    Decimal("0.01"),
    LARGEST,
    Decimal("-0.01"),
    -LARGEST,
    Decimal("0.00"),
    Decimal("828.10"),
]
PAID_AT = datetime(2026, 11, 5, 13, 40, tzinfo=UTC)

probe_metadata = MetaData()
probe = Table(
    "money_probe",
    probe_metadata,
    Column("id", Integer, primary_key=True),
    Column("amount", Money()),
    Column("other", Money()),
)


@pytest.fixture
def probe_engine(engine: Engine) -> Iterator[Engine]:
    """A table with a money column that may hold negatives (tests only)."""
    probe_metadata.create_all(engine)
    yield engine
    probe_metadata.drop_all(engine)


def _rows() -> list[dict[str, object]]:
    return [
        {"id": n, "amount": amount, "other": Decimal("0.01")} for n, amount in enumerate(EXTREMES)
    ]


def _amounts(engine: Engine) -> list[Decimal]:
    with engine.connect() as conn:
        return list(conn.execute(select(probe.c.amount).order_by(probe.c.id)).scalars())


def test_extreme_amounts_come_back_exact(probe_engine: Engine) -> None:
    with probe_engine.begin() as conn:
        conn.execute(insert(probe), _rows())

    amounts = _amounts(probe_engine)

    assert amounts == EXTREMES
    assert all(isinstance(a, Decimal) and a.as_tuple().exponent == -2 for a in amounts)


def test_bulk_inserted_amounts_come_back_exact(probe_engine: Engine) -> None:
    with probe_engine.begin() as conn:
        bulk_insert(conn, probe, _rows())

    assert _amounts(probe_engine) == EXTREMES


def test_sql_sums_and_compares_amounts_exactly(probe_engine: Engine) -> None:
    with probe_engine.begin() as conn:
        conn.execute(insert(probe), _rows())
        positives = select(func.sum(probe.c.amount)).where(probe.c.amount > 0)
        net = probe.c.amount - probe.c.other
        assert conn.execute(positives).scalar_one() == LARGEST + Decimal("828.11")
        assert conn.execute(select(func.sum(probe.c.amount))).scalar_one() == Decimal("828.10")
        assert conn.execute(select(func.sum(case((net > 0, net), else_=0)))).scalar_one() == (
            LARGEST + Decimal("828.08")
        )
        assert conn.execute(select(func.max(probe.c.amount))).scalar_one() == LARGEST
        assert conn.execute(select(func.min(probe.c.amount))).scalar_one() == -LARGEST
        at_least = select(probe.c.id).where(probe.c.amount >= LARGEST)
        assert conn.execute(at_least).scalars().all() == [1]
        just_below = select(func.count()).where(probe.c.amount < Decimal("99999999999999.98"))
        assert conn.execute(just_below).scalar_one() == 5
        negatives = select(probe.c.id).where(probe.c.amount < 0).order_by(probe.c.id)
        assert conn.execute(negatives).scalars().all() == [2, 3]
        empty = select(func.coalesce(func.sum(probe.c.amount), 0)).where(probe.c.id > 99)
        assert conn.execute(empty).scalar_one() == 0
        assert conn.execute(select(probe.c.amount * 2).where(probe.c.id == 5)).scalar_one() == (
            Decimal("1656.20")
        )


def _order(order_id: str, total: Decimal) -> dict[str, object]:
    return {
        "order_id": order_id,
        "member_id": "m-1",
        "total": total,
        "currency": "CNY",
        "paid_at": PAID_AT,
        "items": [],
        "coupon_codes": [],
        "points_redeemed": 0,
        "event_id": f"e-{order_id}",
    }


def test_order_totals_and_refunds_sum_and_compare_exactly(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(orders), [_order("o-1", LARGEST), _order("o-2", Decimal("0.01"))])
        refund = {"order_id": "o-1", "member_id": "m-1", "refunded_at": PAID_AT}
        conn.execute(
            insert(refunds),
            [
                {**refund, "event_id": "r-1", "amount": LARGEST - Decimal("0.01")},
                {**refund, "event_id": "r-2", "amount": Decimal("0.01")},
            ],
        )
        refunded = select(func.coalesce(func.sum(refunds.c.amount), 0)).where(
            refunds.c.order_id == orders.c.order_id
        )
        fully = select(orders.c.order_id).where(orders.c.total <= refunded.scalar_subquery())
        paid = select(func.sum(orders.c.total))

        assert conn.execute(fully).scalars().all() == ["o-1"]
        assert conn.execute(paid).scalar_one() == Decimal("100000000000000.00")


@pytest.mark.parametrize("amount", [Decimal(10) ** 16, -(Decimal(10) ** 16), Decimal("NaN")])
def test_an_amount_no_money_column_can_hold_is_refused_on_both(
    probe_engine: Engine, amount: Decimal
) -> None:
    refused = pytest.raises(StatementError, match="money columns hold less than 10\\^16")
    with refused, probe_engine.begin() as conn:
        conn.execute(insert(probe), {"id": 1, "amount": amount})


def test_a_float_is_never_money(probe_engine: Engine) -> None:
    refused = pytest.raises(StatementError, match="money must be a Decimal, not float")
    with refused, probe_engine.begin() as conn:
        conn.execute(insert(probe), {"id": 1, "amount": 0.1})


def test_more_than_two_decimals_round_half_away_from_zero_on_both(probe_engine: Engine) -> None:
    with probe_engine.begin() as conn:
        conn.execute(
            insert(probe),
            [{"id": 1, "amount": Decimal("0.005")}, {"id": 2, "amount": Decimal("-0.005")}],
        )

    assert _amounts(probe_engine) == [Decimal("0.01"), Decimal("-0.01")]


def test_sqlite_stores_integer_cents(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'cents.db'}")
    with engine.begin() as conn:
        conn.execute(insert(orders), _order("o-1", LARGEST))
        stored = conn.execute(text("SELECT typeof(total), total FROM orders")).one()

    assert tuple(stored) == ("integer", 9_999_999_999_999_999)
