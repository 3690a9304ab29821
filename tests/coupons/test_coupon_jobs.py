"""The package's jobs and actors, the handlers without a program, and the demo's part."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from coupon_factories import NOW, item, paid, registered, send
from rich.console import Console
from sqlalchemy import Engine, select

from core.clock import FixedClock, using_clock
from core.program.loader import Program
from core.runtime import Runtime, set_runtime
from core.settings import Settings
from coupons.jobs import coupon_jobs, expire_coupons
from coupons.tables import coupon_codes
from coupons.views import print_demo_summary
from coupons.wallet import issue_coupon


@pytest.fixture
def runtime(db_url: str, engine: Engine, examples: Path) -> Runtime:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        redis_url=None,
        program_dir=examples / "program",
    )
    runtime = Runtime(settings=settings)
    set_runtime(runtime)
    return runtime


def test_the_daily_job_fires_five_minutes_after_midnight_business_time(
    runtime: Runtime,
) -> None:
    daily, frequent = coupon_jobs(runtime)

    fire = daily.trigger.get_next_fire_time(None, NOW)

    assert daily.id == "coupons.expire" and daily.misfire_grace == timedelta(hours=23)
    assert fire.astimezone(UTC) == datetime(2027, 4, 5, 16, 5, tzinfo=UTC)
    assert frequent.id == "coupons.release_reservations" and not frequent.simulated


def test_the_expire_actor_works_as_of_the_fire_time_it_was_given(
    runtime: Runtime, engine: Engine, program: Program
) -> None:
    send(engine, program, registered("m-1"))
    with engine.begin() as conn:
        issue_coupon(conn, program, coupon_id="tea-day-ninety", member_id="m-1", now=NOW)

    expire_coupons.fn((NOW + timedelta(hours=23)).isoformat())
    with engine.connect() as conn:
        before = conn.execute(select(coupon_codes.c.status)).scalar()
    expire_coupons.fn((NOW + timedelta(days=1)).isoformat())
    with engine.connect() as conn:
        after = conn.execute(select(coupon_codes.c.status)).scalar()

    assert (before, after) == ("issued", "expired")


def test_without_a_program_paid_orders_leave_coupons_alone(
    engine: Engine, program: Program
) -> None:
    send(engine, program, registered("m-1"))
    with engine.begin() as conn:
        code = issue_coupon(conn, program, coupon_id="free-shipping", member_id="m-1", now=NOW).code

    send(engine, None, paid("m-1", "o-1", items=[item("tea", "50.00")], codes=[code]))

    with engine.connect() as conn:
        assert conn.execute(select(coupon_codes.c.status)).scalar() == "issued"


def test_the_demo_shows_wallets_and_explains_the_newest_open_cart(
    runtime: Runtime, engine: Engine
) -> None:
    program = runtime.program
    cart_event = {
        "id": "cart-1",
        "type": "cart.updated",
        "occurred_at": NOW.isoformat(),
        "member_id": "m-1",
        "data": {"cart_id": "c-1", "total": "90.00", "items": [item("tea", "90.00")]},
    }
    send(engine, program, registered("m-1"), cart_event)
    with engine.begin() as conn:
        issue_coupon(conn, program, coupon_id="cart-steep-12", member_id="m-1", now=NOW)
    console = Console(record=True, width=200)

    with using_clock(FixedClock(NOW)):
        print_demo_summary(runtime, console)

    shown = console.export_text()
    assert "coupons  codes in wallets: 1 unused" in shown
    assert "the wallet for m-1's open cart c-1 (en)" in shown
    assert "Add CN¥30.00 more to use this coupon" in shown


def test_the_frequent_job_marks_lapsed_checkout_reservations_released_once(
    runtime: Runtime, engine: Engine
) -> None:
    from coupons.jobs import release_reservations
    from coupons.reservations import close_lapsed_reservations, fetch_reservation
    from coupons.tables import checkout_reservations

    rows = [
        {"reservation_id": name, "order_id": f"o-{name}", "member_id": "m-1", "codes": {},
         "discount": "0.00", "points": 0, "points_value": "0.00", "created_at": NOW,
         "held_until": NOW + timedelta(minutes=minutes), "released_at": released}
        for name, minutes, released in [
            ("rsv_lapsed", 5, None), ("rsv_live", 30, None),
            ("rsv_released", 5, NOW + timedelta(minutes=1)),
        ]
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(checkout_reservations.insert(), rows)

    release_reservations.fn((NOW + timedelta(minutes=10)).isoformat())
    with engine.begin() as conn:
        again = close_lapsed_reservations(conn, now=NOW + timedelta(minutes=10))
        shown = {
            name: fetch_reservation(conn, name)
            for name in ("rsv_lapsed", "rsv_live", "rsv_released")
        }

    assert again == 0
    assert shown["rsv_lapsed"].released_at == NOW + timedelta(minutes=10)
    assert shown["rsv_live"].released_at is None
    assert shown["rsv_released"].released_at == NOW + timedelta(minutes=1)  # kept as it was
