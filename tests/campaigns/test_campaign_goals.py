"""Goals: a conversion is the goal event within the window after entering, one per enrolment,
worth the converting order net of its refunds, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from campaign_shop import Shop, event, paid, registered

from campaigns.goals import fetch_conversions

WELCOME = {
    "id": "welcome",
    "name": "Welcome",
    "kind": "marketing",
    "trigger": {"event": "member.registered"},
    "exit_on": ["order.paid"],
    "goal": {"event": "order.paid", "within": "7d"},
    "steps": [
        {"issue_coupon": "first-brew-15"},
        {"send": {"channel": "email", "template": "welcome"}},
        {"wait": "3d"},
        {"send": {"channel": "push", "template": "welcome-reminder"}},
    ],
}


@pytest.fixture
def shop(tmp_path: Path, db_url: str, engine: Any) -> Shop:
    shop = Shop(tmp_path, db_url, WELCOME)
    shop.ingest(registered("m-ann", "2026-11-01 10:00"))
    return shop


def conversions(shop: Shop) -> list[dict[str, Any]]:
    with shop.runtime.engine.connect() as conn:
        return fetch_conversions(conn, "welcome")


@pytest.mark.parametrize(
    ("paid_at", "converts"),
    [("2026-11-08 09:59", True), ("2026-11-08 10:00", True), ("2026-11-08 10:01", False)],
)
def test_a_conversion_is_the_goal_event_within_the_window(
    shop: Shop, paid_at: str, converts: bool
) -> None:
    shop.ingest(paid("m-ann", "o-1", "300.00", paid_at))

    assert [c["order_id"] for c in conversions(shop)] == (["o-1"] if converts else [])


def test_an_enrolment_converts_once_on_its_first_order_even_after_exiting_on_it(
    shop: Shop,
) -> None:
    shop.ingest(paid("m-ann", "o-1", "120.00", "2026-11-02 10:00"))
    shop.ingest(paid("m-ann", "o-2", "500.00", "2026-11-03 10:00"))

    [conversion] = conversions(shop)
    [journey] = shop.journeys("welcome")
    assert (journey.status, journey.reason) == ("exited", "exit_on:order.paid")
    assert (conversion["order_id"], conversion["arm"]) == ("o-1", "main")
    assert conversion["revenue"] == Decimal("120.00")


def test_revenue_is_the_converting_order_net_of_its_refunds(shop: Shop) -> None:
    shop.ingest(paid("m-ann", "o-1", "300.00", "2026-11-02 10:00"))
    shop.ingest(
        event("order.refunded", "m-ann", "2026-11-04 10:00", order_id="o-1", amount="100.00")
    )

    [conversion] = conversions(shop)
    assert conversion["revenue"] == Decimal("200.00")


def test_an_order_before_entering_is_no_conversion(
    tmp_path: Path, db_url: str, engine: Any
) -> None:
    shop = Shop(tmp_path, db_url, WELCOME)
    shop.ingest(paid("m-bo", "o-0", "90.00", "2026-10-30 10:00"))
    shop.ingest(registered("m-bo", "2026-11-01 10:00"))

    assert conversions(shop) == []
