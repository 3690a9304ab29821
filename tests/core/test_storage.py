"""Storage: Alembic migrations run both ways on both databases; types keep time and money exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, select, text

from core.db import DatabaseError, get_engine, normalise_url
from core.events.tables import orders
from core.migrate import current_revisions, downgrade, head_revisions, upgrade
from core.schema import metadata


def test_migrations_create_every_table_and_run_down_and_up_again(engine: Engine) -> None:
    tables = {t.name for t in metadata.sorted_tables}

    assert tables <= set(inspect(engine).get_table_names())
    downgrade(engine, "base")
    assert not tables & set(inspect(engine).get_table_names())
    upgrade(engine)
    with engine.connect() as conn:
        assert current_revisions(conn) == head_revisions()
    assert tables <= set(inspect(engine).get_table_names())


def test_the_embedded_database_migrates_itself_on_first_use_in_wal_mode(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'fresh.db'}")

    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert current_revisions(conn) == head_revisions()


def test_times_come_back_aware_in_utc_and_money_exact(engine: Engine) -> None:
    paid_at = datetime(2026, 11, 5, 21, 40, tzinfo=timezone(timedelta(hours=8)))
    row = {
        "order_id": "o-1",
        "member_id": "m-1",
        "total": Decimal("828.10"),
        "currency": "CNY",
        "paid_at": paid_at,
        "items": [],
        "coupon_codes": [],
        "points_redeemed": 0,
        "event_id": "e-1",
    }
    with engine.begin() as conn:
        conn.execute(orders.insert(), row)
        stored = conn.execute(select(orders.c.paid_at, orders.c.total)).one()

    assert stored.paid_at == paid_at and stored.paid_at.tzinfo == UTC
    assert stored.total == Decimal("828.10")


def test_a_naive_datetime_is_refused_before_it_reaches_the_database(engine: Engine) -> None:
    row = {
        "order_id": "o-1",
        "member_id": "m-1",
        "total": Decimal("1"),
        "currency": "CNY",
        "paid_at": datetime(2026, 11, 5),
        "items": [],
        "coupon_codes": [],
        "points_redeemed": 0,
        "event_id": "e-1",
    }
    with pytest.raises(Exception, match="naive datetime"), engine.begin() as conn:
        conn.execute(orders.insert(), row)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_pick_the_psycopg_3_driver(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


def test_an_unsupported_database_is_refused_with_the_supported_forms() -> None:
    with pytest.raises(DatabaseError, match=r"use sqlite:///path\.db or postgresql://"):
        normalise_url("mysql://u@h/db")
