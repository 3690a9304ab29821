"""``loyalty-engine demo``: the simulated shoppers (seeded, valid events, in order, answering
the outbox) and a whole tour on a smaller crowd, whose printed numbers are read back from the
engine's database, outbox and report page."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import html5lib
from rich.console import Console
from sqlalchemy import create_engine, func, select

from core.demo import DAYS, OPENS, run_demo
from core.demo_shop import CART_CAMPAIGN, SHANGHAI, Shoppers
from core.events.tables import events, orders
from core.events.validation import parse_line, validate_event

HISTORY = datetime(2026, 10, 1, tzinfo=SHANGHAI)


def crowd(seed: int = 7) -> Shoppers:
    return Shoppers(seed=seed, members=120, joining=30, opens=OPENS)


def fortnight(shoppers: Shoppers, outbox: list[dict[str, Any]] | None = None) -> list[Any]:
    days = []
    for n in range(DAYS):
        days.append(shoppers.day((OPENS + timedelta(days=n)).date(), outbox or []))
    return days


def test_the_same_seed_plays_the_same_shoppers_and_another_seed_others() -> None:
    first, again, other = crowd(), crowd(), crowd(seed=8)
    assert first.history(HISTORY) == again.history(HISTORY)
    assert [d.events for d in fortnight(first)] == [d.events for d in fortnight(again)]
    assert other.history(HISTORY) != crowd().history(HISTORY)


def test_every_event_is_valid_in_time_order_and_on_its_own_day() -> None:
    shoppers = crowd()
    history = shoppers.history(HISTORY)
    assert all(HISTORY <= at(e) < OPENS for e in history)
    for n, day in enumerate(fortnight(shoppers)):
        start = OPENS + timedelta(days=n)
        assert all(start <= at(e) < start + timedelta(days=1) for e in day.events)
        assert [at(e) for e in day.events] == sorted(at(e) for e in day.events)
        history += day.events
    for event in history:
        validate_event(parse_line(json.dumps(event)))  # raises on anything the engine rejects
    assert len({e["id"] for e in history}) == len(history)
    registered = [e["member_id"] for e in history if e["type"] == "member.registered"]
    assert sorted(registered) == [f"m-{n:04d}" for n in range(1, 121)]
    first_seen = {}
    for event in history:
        first_seen.setdefault(event["member_id"], event["type"])
    assert set(first_seen.values()) == {"member.registered"}  # nobody acts before joining


def test_a_cart_message_brings_shoppers_back_more_often_than_none() -> None:
    def returned(with_messages: bool) -> int:
        shoppers = crowd()
        shoppers.history(HISTORY)
        total = 0
        for n in range(DAYS):
            outbox = [
                {"message_id": f"msg-{cart.cart_id}", "member_id": cart.member_id,
                 "campaign_id": CART_CAMPAIGN, "template": "cart-coupon",
                 "sent_at": (cart.left_at + timedelta(hours=2)).isoformat()}
                for cart in shoppers.carts.values()
            ] if with_messages else []  # fmt: skip
            total += shoppers.day((OPENS + timedelta(days=n)).date(), outbox).returned
        return total

    assert returned(with_messages=True) > 2 * returned(with_messages=False) > 0


def test_the_tour_prints_what_the_engine_stored(tmp_path: Path) -> None:
    console = Console(record=True, width=100)
    runtime = run_demo(tmp_path / "demo", console=console, members=80)
    text = console.export_text()
    folder = tmp_path / "demo"
    scenario = [json.loads(line) for line in (folder / "scenario.jsonl").read_text().splitlines()]
    outbox = [json.loads(line) for line in (folder / "outbox.jsonl").read_text().splitlines()]
    engine = create_engine(runtime.settings.database_url)
    with engine.connect() as conn:
        stored = set(conn.execute(select(events.c.id)).scalars())
        paid = conn.execute(select(func.count()).where(orders.c.paid_at >= OPENS)).scalar_one()
    assert {e["id"] for e in scenario} <= stored  # every event of the fortnight was accepted
    rows = day_rows(text)
    assert len(rows) == DAYS
    in_scenario = sum(e["type"] == "order.paid" for e in scenario)
    assert sum(r["orders"] for r in rows) == paid == in_scenario
    assert sum(r["paid"] for r in rows) == sum(
        Decimal(e["data"]["total"]) for e in scenario if e["type"] == "order.paid"
    )
    assert sum(r["sent"] for r in rows) == sum(
        at(m, "sent_at") < OPENS + timedelta(days=DAYS) and at(m, "sent_at") >= OPENS
        for m in outbox
    )
    assert len({m["message_id"] for m in outbox}) == len(outbox)  # nothing sent twice
    for part in ("experiment cart-abandonment", "lift over the holdout", "journeys", "coupons"):
        assert part in text
    page = folder / "cart-abandonment-report.html"
    html = page.read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(html)
    assert html.count("<svg") == 3
    for chunk in html.split("<svg")[1:]:
        ET.fromstring("<svg" + chunk[: chunk.index("</svg>") + 6])
    assert str(page) in text.replace("\n", "")


def day_rows(text: str) -> list[dict[str, Any]]:
    pattern = re.compile(
        r"^ (?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d +(\d+) +(\d+) +(\d+) +(\d+) +([\d,]+\.\d\d)"
        r" +(\d+) +(\d+) +(\d+) +(\d+)",
        re.M,
    )
    return [
        {"joined": int(m[1]), "carts": int(m[2]), "won_back": int(m[3]), "orders": int(m[4]),
         "paid": Decimal(m[5].replace(",", "")), "refunds": int(m[6]), "sent": int(m[7])}
        for m in pattern.finditer(text)
    ]  # fmt: skip


def at(record: dict[str, Any], key: str = "occurred_at") -> datetime:
    return datetime.fromisoformat(record[key])
