"""Loyalty and coupons read the same ``member``: the same members, through an earning rule's
``when:`` and a coupon's ``when:`` at the same moment, see the same numbers."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from core.events.intake import Intake, ingest
from core.expressions import Expression
from core.program.loader import load_program
from coupons import context
from coupons.carts import parse_cart
from coupons.explain import preview_eligibility
from coupons.facts import fetch_member_facts
from loyalty.tables import points_ledger

PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "program"
AT = datetime.fromisoformat("2026-06-10T12:00:00+08:00")
DAY = timedelta(days=1)
# What m-1 is at AT: its 400-day-old order was refunded inside the window (no spend, not -500),
# it paid 200 five days ago, and it is the pending referee of m-ref.
CONDITION = (
    "member.qualifying_spend == 200.0 && member.net_spend == 200.0 && member.paid_orders == 2"
    ' && member.referrals == 0 && member.days_since_last_order == 5 && member.tier == "leaf"'
    ' && member.referred_by == "TEA-REF" && member.days_since_registered == 401'
)
READ = {"qualifying_spend", "net_spend", "paid_orders", "referrals", "days_since_last_order",
        "tier", "referred_by", "days_since_registered"}  # fmt: skip


def _event(kind: str, member: str, at: datetime, **data: Any) -> dict[str, Any]:
    number = f"{kind}-{member}-{at.timestamp():.0f}"
    return {"id": number, "type": kind, "occurred_at": at.isoformat(), "member_id": member,
            "data": data}  # fmt: skip


def _history() -> list[dict[str, Any]]:
    old, recent = AT - 400 * DAY, AT - 5 * DAY
    item = {"sku": "T-1", "name": "Tea", "category": "tea", "qty": 1}
    return [
        _event("member.registered", "m-ref", old - 30 * DAY, referral_code="TEA-REF",
               email="ref@example.com"),
        _event("member.registered", "m-1", old - DAY, referred_by="TEA-REF", locale="en",
               email="one@example.com"),
        _event("order.paid", "m-1", old, order_id="o-old", total="500.00",
               items=[{**item, "price": "500.00"}]),
        _event("order.refunded", "m-1", AT - 10 * DAY, order_id="o-old", amount="500.00"),
        _event("order.paid", "m-1", recent, order_id="o-new", total="200.00",
               items=[{**item, "price": "200.00"}]),
        _event("review.posted", "m-1", AT, order_id="o-new", sku="T-1", has_photo=True),
        _event("review.posted", "m-ref", AT, order_id="o-x", sku="T-1", has_photo=True),
    ]  # fmt: skip


@pytest.fixture
def program(tmp_path: Path) -> Any:
    """The example program with the same member condition in an earn rule and a coupon."""
    directory = tmp_path / "program"
    shutil.copytree(PROGRAM, directory)
    photo = f"when: 'event.data.has_photo && {CONDITION}'"
    for file, old, new in (
        ("program.yaml", "when: event.data.has_photo", photo),
        ("coupons.yaml", "when: now.day == 8 ", f"when: '{CONDITION}'"),
    ):
        path = directory / file
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return load_program(directory)


def test_an_earning_rule_and_a_coupon_see_the_same_member(
    engine: Engine, program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    current = {"member": ""}  # whose event (or checkout) is being judged
    evaluate = Expression.evaluate

    def spy(self: Expression, variables: Any) -> Any:
        if "member" in variables:
            who = "loyalty" if self.source.startswith("event.") else "coupons"
            seen[(who, current["member"])] = dict(variables["member"])
        return evaluate(self, variables)

    monkeypatch.setattr(Expression, "evaluate", spy)
    monkeypatch.setattr(context, "_remembered_results", {})  # results kept across calls
    for payload in _history():  # one batch per event, at its own time, as the shop sends them
        moment, current["member"] = (
            datetime.fromisoformat(payload["occurred_at"]),
            payload["member_id"],
        )
        ingest([payload], Intake(engine=engine, now=moment, program=program))
    cart = parse_cart({"items": [{"sku": "T-1", "category": "tea", "price": "50.00"}]})
    with engine.connect() as conn:
        for member_id in ("m-1", "m-ref"):
            current["member"] = member_id
            preview_eligibility(conn, program, member_id=member_id, cart=cart, now=AT)
        review_points = conn.execute(
            select(points_ledger.c.member_id, func.sum(points_ledger.c.points))
            .where(points_ledger.c.rule_id == "photo-review")
            .group_by(points_ledger.c.member_id)
        ).all()

    for member_id in ("m-1", "m-ref"):
        loyalty, coupons = seen[("loyalty", member_id)], seen[("coupons", member_id)]
        assert set(loyalty) >= READ  # loyalty may build only the fields its rules read
        assert loyalty == {name: coupons[name] for name in loyalty}
    assert seen[("loyalty", "m-1")]["qualifying_spend"] == 200.0  # not -300
    assert seen[("loyalty", "m-ref")]["referrals"] == 0  # its referee is still pending
    assert dict(review_points) == {"m-1": 30}  # the condition held for m-1 only


def test_a_coupon_judges_an_order_without_itself_nor_the_upgrade_it_caused(
    engine: Engine, program: Any
) -> None:
    paid_at = AT - DAY
    events = [
        _event("member.registered", "m-2", AT - 30 * DAY, email="two@example.com"),
        _event("order.paid", "m-2", paid_at, order_id="o-big", total="9000.00",
               items=[{"sku": "P-1", "name": "Pot", "category": "teaware", "price": "9000.00",
                       "qty": 1}]),
    ]  # fmt: skip
    for payload in events:
        moment = datetime.fromisoformat(payload["occurred_at"])
        ingest([payload], Intake(engine=engine, now=moment, program=program))

    with engine.connect() as conn:
        judged = fetch_member_facts(conn, program, "m-2", now=paid_at, exclude_order="o-big")
        after = fetch_member_facts(conn, program, "m-2", now=paid_at)

    assert (judged.tier, judged.paid_orders, judged.first_order) == ("leaf", 0, True)
    assert judged.member["qualifying_spend"] == 0.0
    assert (after.tier, after.paid_orders, after.first_order) == ("oolong", 1, False)
    assert after.member["qualifying_spend"] == 9000.0
