"""Migrations: the schema they build is the schema the code declares, and old data survives them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select, text

from core.db import get_engine
from core.events.tables import carts, orders, refunds
from core.migrate import upgrade
from core.schema import metadata
from coupons.tables import coupon_codes
from loyalty.tables import member_tiers, referrals, tier_history


def test_the_migrated_schema_matches_the_tables_the_code_declares(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "render_as_batch": conn.dialect.name == "sqlite"},
        )
        differences = compare_metadata(context, metadata)

    assert differences == []


# Rows as the embedded database held them before money was stored in cents: SQLite kept each
# NUMERIC as a float, so 99999999999999.99 was already 99999999999999.98 on disk.
_OLD_ROWS = [
    "INSERT INTO orders VALUES ('o-1', 'm-1', 828.1, 'CNY', '2026-11-05 13:40:00', '[]', '[]',"
    " 0, NULL, 'e-1')",
    "INSERT INTO orders VALUES ('o-2', 'm-1', 99999999999999.99, 'CNY', '2026-11-05 13:40:00',"
    " '[]', '[]', 0, NULL, 'e-2')",
    "INSERT INTO refunds VALUES ('r-1', 'o-1', 'm-1', 0.01, '2026-11-06 13:40:00')",
    "INSERT INTO carts VALUES ('c-1', 'm-1', 19.9, '[]', '2026-11-05 13:40:00', NULL, NULL)",
    "INSERT INTO member_tiers VALUES ('m-1', 'bud', 3000.55, '2026-11-05 13:40:00', NULL,"
    " '2026-11-05 13:40:00')",
    "INSERT INTO tier_history (member_id, from_tier, to_tier, direction, qualifying_spend,"
    " changed_at, cause) VALUES ('m-1', 'leaf', 'bud', 'up', 3000.55, '2026-11-05 13:40:00',"
    " 'order:o-1')",
    "INSERT INTO referrals (referee_id, code, status, registered_at, order_total, updated_at)"
    " VALUES ('m-2', 'REF', 'pending', '2026-11-05 13:40:00', 168.3, '2026-11-05 13:40:00'),"
    " ('m-3', 'REF', 'pending', '2026-11-05 13:40:00', NULL, '2026-11-05 13:40:00')",
    "INSERT INTO coupon_codes (code, coupon_id, status, issued_at, discount, updated_at)"
    " VALUES ('K7QM-4XRT-9HPW', 'welcome-20', 'redeemed', '2026-11-05 13:40:00', 20.05,"
    " '2026-11-05 13:40:00')",
]


def test_an_existing_embedded_database_keeps_its_amounts_to_the_cent(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'old.db'}", migrate=False)
    for revision in ("0001", "0002_loyalty", "0003_coupons"):  # each package before 0006
        upgrade(engine, revision)
    with engine.begin() as conn:
        for statement in _OLD_ROWS:
            conn.execute(text(statement))

    upgrade(engine)

    with engine.connect() as conn:
        amounts = {
            "orders": conn.execute(select(orders.c.total).order_by(orders.c.order_id)).all(),
            "refunds": conn.execute(select(refunds.c.amount)).all(),
            "carts": conn.execute(select(carts.c.total)).all(),
            "tiers": conn.execute(select(member_tiers.c.qualifying_spend)).all(),
            "history": conn.execute(select(tier_history.c.qualifying_spend)).all(),
            "referrals": conn.execute(
                select(referrals.c.order_total).order_by(referrals.c.referee_id)
            ).all(),
            "coupons": conn.execute(select(coupon_codes.c.discount)).all(),
        }
        kinds = conn.execute(text("SELECT DISTINCT typeof(total) FROM orders")).scalars().all()

    assert {name: [row[0] for row in rows] for name, rows in amounts.items()} == {
        "orders": [Decimal("828.10"), Decimal("99999999999999.98")],
        "refunds": [Decimal("0.01")],
        "carts": [Decimal("19.90")],
        "tiers": [Decimal("3000.55")],
        "history": [Decimal("3000.55")],
        "referrals": [Decimal("168.30"), None],
        "coupons": [Decimal("20.05")],
    }
    assert kinds == ["integer"]


def test_two_threads_migrating_two_databases_at_once_each_get_their_own_schema(
    tmp_path: Path,
) -> None:
    """Alembic keeps the running migration in module globals: without core.migrate's lock, a
    thread's steps ran on the other thread's database ("table carts already exists")."""
    import threading

    from sqlalchemy import inspect

    engines = [get_engine(f"sqlite:///{tmp_path / f'db{n}.db'}", migrate=False) for n in range(4)]
    start = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def migrate(engine: Engine) -> None:
        start.wait()
        try:
            upgrade(engine)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=migrate, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert failures == []
    for engine in engines:
        assert {"members", "orders", "points_lots", "api_keys"} <= set(
            inspect(engine).get_table_names()
        )
