"""The CEL variables core builds: every field pinned on tricky members, on SQLite and PostgreSQL.

Members are written straight into the projections and loyalty's tables, then fetched with
``fetch_histories`` and built as of ``AT``: what a rule sees is exactly this table.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event

from core.cel import variables as variables_module
from core.cel.history import (
    ALL_TIME_FIELDS,
    MemberHistory,
    Moments,
    PaidOrder,
    Refund,
    fetch_histories,
    net_spend,
)
from core.cel.sources import MissingSource
from core.cel.types import BASKET, CONSENTS, MEMBER, NOW
from core.cel.variables import VariableSettings, event_variables, member_variables, now_variables
from core.events.tables import members, orders, refunds
from core.events.validation import validate_event
from core.program.loader import Program, load_program
from loyalty.ladder import TierLadder
from loyalty.tables import member_tiers, referrals, tier_history
from loyalty.tier_recalc import MemberRange, fetch_decisions

PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "program"
AT = datetime.fromisoformat("2026-06-10T12:00:00+08:00")  # a Wednesday in Shanghai
DAY = timedelta(days=1)
NO_CONSENT = {"email": False, "sms": False, "push": False}


@pytest.fixture(scope="module")
def program() -> Program:
    return load_program(PROGRAM)


def _member(member_id: str, **profile: Any) -> dict[str, Any]:
    row = dict.fromkeys(
        ("registered_at", "birthday", "locale", "referral_code", "referred_by"), None
    )
    consents = dict.fromkeys(("consent_email", "consent_sms", "consent_push"), None)
    return {"member_id": member_id, "first_seen_at": AT - 1000 * DAY, **row, **consents, **profile}


def _order(member_id: str, order_id: str, total: str, paid_at: datetime) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "member_id": member_id,
        "total": Decimal(total),
        "currency": "CNY",
        "paid_at": paid_at,
        "items": [],
        "coupon_codes": [],
        "points_redeemed": 0,
        "cart_id": None,
        "event_id": f"evt-{order_id}",
    }


def _refund(member_id: str, order_id: str, amount: str, at: datetime, n: int = 1) -> dict:
    return {
        "event_id": f"evt-r-{order_id}-{n}",
        "order_id": order_id,
        "member_id": member_id,
        "amount": Decimal(amount),
        "refunded_at": at,
    }


def _referral(referee: str, referrer: str, status: str, decided_at: datetime | None) -> dict:
    return {
        "referee_id": referee,
        "code": f"CODE-{referrer}",
        "referrer_id": referrer,
        "status": status,
        "registered_at": AT - 60 * DAY,
        "decided_at": decided_at,
        "updated_at": AT,
    }


MEMBERS: list[dict[str, Any]] = [
    _member("m-old-refund", registered_at=AT - 500 * DAY, locale="zh-CN"),
    _member("m-no-orders", registered_at=AT - 3 * DAY - timedelta(hours=1), locale="en",
            birthday=date(1990, 6, 2), consent_email=True, consent_sms=False),
    _member("m-future-order", registered_at=AT + timedelta(hours=2)),  # registers after AT
    _member("m-partial", registered_at=AT - 40 * DAY, consent_push=True),
    _member("m-over-refunded", registered_at=AT - 40 * DAY),
    _member("m-window-edge", registered_at=AT - 400 * DAY),
    _member("m-referrer", registered_at=AT - 90 * DAY, referral_code="CODE-m-referrer"),
    _member("m-pending-referee", registered_at=AT - 30 * DAY, referred_by="CODE-m-referrer"),
    _member("m-tiered", registered_at=AT - 300 * DAY),
    _member("m-removed-tier", registered_at=AT - 300 * DAY),
]  # fmt: skip
ORDERS: list[dict[str, Any]] = [
    _order("m-old-refund", "o-old", "500.00", AT - 400 * DAY),
    _order("m-future-order", "o-before", "100.00", AT - 5 * DAY),
    _order("m-future-order", "o-after", "999.00", AT + timedelta(hours=1)),
    _order("m-partial", "o-partial", "800.00", AT - 30 * DAY),
    _order("m-over-refunded", "o-over", "100.00", AT - 20 * DAY),
    _order("m-over-refunded", "o-kept", "50.00", AT - 10 * DAY),
    _order("m-window-edge", "o-edge-out", "200.00", AT - 365 * DAY),
    _order("m-window-edge", "o-edge-in", "300.00", AT - 365 * DAY + timedelta(minutes=1)),
    _order("m-no-profile", "o-ghost", "70.00", AT - 2 * DAY),
    _order("m-tiered", "o-upgrade", "9000.00", AT),
]
REFUNDS: list[dict[str, Any]] = [
    _refund("m-old-refund", "o-old", "500.00", AT - 10 * DAY),  # inside the window
    _refund("m-partial", "o-partial", "300.00", AT - 29 * DAY),
    _refund("m-partial", "o-partial", "100.00", AT + DAY, n=2),  # after AT
    _refund("m-over-refunded", "o-over", "60.00", AT - 19 * DAY),
    _refund("m-over-refunded", "o-over", "60.00", AT - 18 * DAY, n=2),  # 120 of 100
]
TIERS: list[dict[str, Any]] = [
    {"member_id": "m-tiered", "tier_id": "oolong", "since": AT, "updated_at": AT,
     "qualifying_spend": Decimal("9000.00"), "below_since": None},
    {"member_id": "m-removed-tier", "tier_id": "jade", "since": AT - DAY, "updated_at": AT,
     "qualifying_spend": Decimal("0.00"), "below_since": None},
]  # fmt: skip
HISTORY: list[dict[str, Any]] = [
    {"member_id": "m-tiered", "from_tier": None, "to_tier": "bud", "direction": "up",
     "qualifying_spend": Decimal("3000.00"), "changed_at": AT - 200 * DAY, "cause": "recalc"},
    {"member_id": "m-tiered", "from_tier": "bud", "to_tier": "oolong", "direction": "up",
     "qualifying_spend": Decimal("9000.00"), "changed_at": AT, "cause": "order:o-upgrade"},
]  # fmt: skip
REFERRALS: list[dict[str, Any]] = [
    _referral("m-pending-referee", "m-referrer", "pending", None),
    _referral("m-settled-1", "m-referrer", "settled", AT - 7 * DAY),
    _referral("m-settled-late", "m-referrer", "settled", AT + DAY),  # settles after AT
    _referral("m-rejected", "m-referrer", "rejected", AT - 3 * DAY),
]


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        for table, rows in (
            (members, MEMBERS),
            (orders, ORDERS),
            (refunds, REFUNDS),
            (member_tiers, TIERS),
            (tier_history, HISTORY),
            (referrals, REFERRALS),
        ):
            conn.execute(table.insert(), rows)


def _expected(member_id: str, **fields: Any) -> dict[str, Any]:
    base = {
        "id": member_id,
        "tier": "leaf",
        "tier_rank": 0,
        "paid_orders": 0,
        "net_spend": 0.0,
        "qualifying_spend": 0.0,
        "days_since_registered": None,
        "days_since_last_order": None,
        "birthday_month": None,
        "referrals": 0,
        "referred_by": None,
        "locale": None,
        "consents": NO_CONSENT,
    }
    return {**base, **fields}


TABLE = [
    # The 400-day-old order refunded inside the window: not -500, and not spend at all.
    _expected("m-old-refund", paid_orders=1, days_since_registered=500,
              days_since_last_order=400, locale="zh-CN"),
    _expected("m-no-orders", days_since_registered=3, birthday_month=6, locale="en",
              consents={"email": True, "sms": False, "push": False}),
    # The order paid after AT does not count; nor does a registration after AT.
    _expected("m-future-order", paid_orders=1, net_spend=100.0, qualifying_spend=100.0,
              days_since_last_order=5),
    # 300 refunded by AT; the 100 refunded the day after does not count yet.
    _expected("m-partial", paid_orders=1, net_spend=500.0, qualifying_spend=500.0,
              days_since_registered=40, days_since_last_order=30,
              consents={"email": False, "sms": False, "push": True}),
    # 120 refunded of a 100 order: that order counts 0, never -20 against the other.
    _expected("m-over-refunded", paid_orders=2, net_spend=50.0, qualifying_spend=50.0,
              days_since_registered=40, days_since_last_order=10),
    # Paid exactly 365 days before AT: outside the window (it is (AT - 365 days, AT]).
    _expected("m-window-edge", paid_orders=2, net_spend=500.0, qualifying_spend=300.0,
              days_since_registered=400, days_since_last_order=364),
    # One settled by AT: the pending, rejected and later-settled ones do not count.
    _expected("m-referrer", referrals=1, days_since_registered=90),
    _expected("m-pending-referee", referred_by="CODE-m-referrer", days_since_registered=30),
    # No profile row at all: profile fields null, consents false, orders still count.
    _expected("m-no-profile", paid_orders=1, net_spend=70.0, qualifying_spend=70.0,
              days_since_last_order=2),
    # Upgraded to oolong at AT by the order o-upgrade: as of AT it holds oolong.
    _expected("m-tiered", tier="oolong", tier_rank=2, paid_orders=1, net_spend=9000.0,
              qualifying_spend=9000.0, days_since_registered=300, days_since_last_order=0),
    _expected("m-removed-tier", tier="jade", tier_rank=-1, days_since_registered=300),
    _expected("m-never-seen"),
]  # fmt: skip


@pytest.mark.parametrize("expected", TABLE, ids=[row["id"] for row in TABLE])
def test_every_member_field_as_of_a_moment(
    engine: Engine, program: Program, expected: dict[str, Any]
) -> None:
    _seed(engine)
    with engine.connect() as conn:
        history = fetch_histories(conn, [expected["id"]], program=program)[expected["id"]]

    member = member_variables(history, VariableSettings.from_program(program), at=AT)

    assert member == expected


def test_an_order_judged_is_left_out_with_the_upgrade_it_caused(
    engine: Engine, program: Program
) -> None:
    _seed(engine)
    with engine.connect() as conn:
        history = fetch_histories(conn, ["m-tiered"], program=program)["m-tiered"]

    settings = VariableSettings.from_program(program)
    member = member_variables(history, settings, at=AT, exclude_order="o-upgrade")

    assert (member["tier"], member["tier_rank"]) == ("bud", 1)
    assert (member["paid_orders"], member["net_spend"]) == (0, 0.0)
    assert member["days_since_last_order"] is None
    # Before the first change, the member held no tier: the lowest.
    earlier = member_variables(history, settings, at=AT - 300 * DAY)
    assert (earlier["tier"], earlier["tier_rank"]) == ("leaf", 0)


def test_a_batch_of_members_is_fetched_with_one_query_per_table(
    engine: Engine, program: Program
) -> None:
    _seed(engine)
    ids = [row["id"] for row in TABLE]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        with engine.connect() as conn:
            histories = fetch_histories(conn, ids, program=program)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert sorted(histories) == sorted(ids)
    # members, orders, refunds, and loyalty's member_tiers, tier_history, referrals
    assert len(statements) == 6


def test_qualifying_spend_agrees_with_the_daily_tier_recalculation(
    engine: Engine, program: Program
) -> None:
    """The recalculation reports the spend of every member it would move; holding everyone at
    the top tier makes it report every member with orders."""
    _seed(engine)
    with engine.begin() as conn:
        conn.execute(member_tiers.delete())
        top = [{**TIERS[0], "member_id": row["id"], "tier_id": "puer"} for row in TABLE]
        conn.execute(member_tiers.insert(), top)
    ladder = TierLadder.from_program(program)
    with engine.begin() as conn:
        decisions = fetch_decisions(conn, ladder, as_of=AT, members_in=MemberRange())
        histories = fetch_histories(conn, [row["id"] for row in TABLE], program=program)

    settings = VariableSettings.from_program(program)
    from_sql = {d.member_id: float(d.spend) for d in decisions}
    from_cel = {
        member_id: member_variables(history, settings, at=AT)["qualifying_spend"]
        for member_id, history in histories.items()
    }
    assert from_sql == from_cel


@pytest.mark.parametrize(
    ("refunded", "window", "spend"),
    [
        ("0.00", None, "300.00"),
        ("100.00", None, "200.00"),
        ("400.00", None, "0.00"),  # never below zero
        ("100.00", timedelta(days=10), "0.00"),  # the order is outside a 10-day window
    ],
)
def test_net_spend_takes_each_orders_refunds_off_that_order_only(
    refunded: str, window: timedelta | None, spend: str
) -> None:
    order = PaidOrder("o-1", AT - 20 * DAY, Decimal("300.00"))
    refund = Refund("o-1", Decimal(refunded), AT - DAY)

    assert net_spend([order], [refund], at=AT, window=window) == Decimal(spend)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-06-10T12:00:00+08:00", (2026, 6, 10, 3, 12)),  # a Wednesday
        ("2026-06-13T23:59:00+08:00", (2026, 6, 13, 6, 23)),  # Saturday
        ("2026-06-13T16:00:00+00:00", (2026, 6, 14, 0, 0)),  # Sunday midnight in Shanghai
    ],
)
def test_now_is_in_the_business_time_zone_with_sunday_as_0(
    program: Program, moment: str, expected: tuple[int, ...]
) -> None:
    now = now_variables(datetime.fromisoformat(moment), VariableSettings.from_program(program).zone)

    assert (now["year"], now["month"], now["day"], now["weekday"], now["hour"]) == expected


def test_an_orders_event_gives_order_event_and_now(program: Program) -> None:
    order = validate_event(
        {
            "id": "evt-1",
            "type": "order.paid",
            "occurred_at": AT.isoformat(),
            "member_id": "m-1",
            "data": {
                "order_id": "o-1",
                "total": "388.00",
                "items": [
                    {"sku": "T-1", "name": "Tea", "category": "tea", "price": "88.00", "qty": 1},
                    {"sku": "P-1", "name": "Pot", "category": "", "price": "150.00", "qty": 2},
                ],
            },
        }
    )

    variables = event_variables(order, VariableSettings.from_program(program).zone)

    assert variables["order"] == {
        "total": 388.0,
        "item_count": 3,
        "categories": ["tea"],  # an empty category is no category
        "items": [
            {"sku": "T-1", "name": "Tea", "category": "tea", "price": 88.0, "qty": 1},
            {"sku": "P-1", "name": "Pot", "category": "", "price": 150.0, "qty": 2},
        ],
    }
    assert variables["event"]["type"] == "order.paid"
    assert variables["event"]["occurred_at"] == AT
    assert variables["event"]["data"]["total"] == 388.0
    assert variables["now"]["weekday"] == 3
    assert "cart" not in variables


def test_a_history_without_a_sources_facts_is_refused_not_guessed() -> None:
    settings = VariableSettings(zone=ZoneInfo("UTC"), window=DAY)

    with pytest.raises(MissingSource, match=r"member\.tier"):
        member_variables(MemberHistory("m-1"), settings, at=AT)


def _documented_paths() -> list[str]:
    paths = [f"member.{name}" for name in MEMBER.fields if name != "consents"]
    paths += [f"member.consents.{name}" for name in CONSENTS.fields]
    paths += [f"now.{name}" for name in NOW.fields]
    paths += [f"order.{name}" for name in BASKET.fields]
    return [*paths, "event.type", "event.occurred_at", "event.data"]


@pytest.mark.parametrize("path", _documented_paths())
def test_every_field_is_documented_in_the_module_and_in_docs(path: str) -> None:
    root, field = path.split(".")[0], path.split(".")[-1]
    row = re.compile(rf"^{root}\.[\w.|/ ]*\b{field}\b", re.MULTILINE)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "cel.md").read_text(encoding="utf-8")

    assert row.search(variables_module.__doc__ or ""), f"no row for {path} in core.cel.variables"
    assert f"`{path.split('.', 1)[1]}`" in doc, f"{path} is not in docs/cel.md"


SPANS = [timedelta(0), timedelta(hours=1), 30 * DAY, 364 * DAY, 365 * DAY, 500 * DAY]


@pytest.mark.parametrize("span", SPANS, ids=lambda span: f"{span.days}d{span.seconds // 3600}h")
@pytest.mark.parametrize("all_time", [True, False], ids=["all-fields", "windowed-fields"])
def test_a_history_fetched_for_moments_gives_every_field_the_full_one_does(
    engine: Engine, program: Program, span: timedelta, all_time: bool
) -> None:
    """A history fetched for a batch's moments (orders bundled, and without the all-time fields
    none before every window) builds the same ``member`` as the full history at every moment of
    the batch, each judged without its own order, on edges, refunds and future orders alike."""
    _seed(engine)
    settings = VariableSettings.from_program(program)
    ids = [row["id"] for row in TABLE]
    fields = frozenset(MEMBER.fields) - (frozenset() if all_time else ALL_TIME_FIELDS)
    first = AT - span / 2
    moments = Moments(first, first + span, settings.window, frozenset({"o-upgrade", "o-kept"}))
    with engine.connect() as conn:
        full = fetch_histories(conn, ids, program=program)
        bundled = fetch_histories(conn, ids, program=program, fields=fields, moments=moments)

    steps = [first + span * k / 4 for k in range(5)] + [AT - 365 * DAY + span / 2]
    for at in [step for step in steps if first <= step <= first + span]:
        for member_id in ids:
            for excluded in (None, "o-upgrade", "o-kept"):
                expected = member_variables(
                    full[member_id], settings, at=at, exclude_order=excluded, fields=fields
                )
                assert (
                    member_variables(
                        bundled[member_id], settings, at=at, exclude_order=excluded, fields=fields
                    )
                    == expected
                ), (member_id, at, excluded)


def test_a_batchs_moments_span_its_events_and_set_apart_the_orders_they_pay() -> None:
    def event(event_id: str, kind: str, at: datetime, data: dict[str, Any]) -> Any:
        body = {"id": event_id, "type": kind, "occurred_at": at.isoformat(), "member_id": "m-1"}
        return validate_event({**body, "data": data})

    events = [
        event("e-1", "order.paid", AT + DAY, {"order_id": "o-1", "total": "10.00"}),
        event("e-2", "review.posted", AT - DAY, {"order_id": "o-0", "sku": "T-1"}),
        event("e-3", "order.paid", AT, {"order_id": "o-2", "total": "20.00"}),
    ]

    moments = Moments.of(events, 30 * DAY)

    assert moments == Moments(AT - DAY, AT + DAY, 30 * DAY, frozenset({"o-1", "o-2"}))
    assert Moments.of([], 30 * DAY) is None


def test_orders_every_moment_counts_alike_come_back_as_one_bundle(
    engine: Engine, program: Program
) -> None:
    """A year of unrefunded orders, read at one hour of moments, is one row: their count, sum
    and latest payment; a refunded one, and the hour's own orders, stay rows of their own."""
    window = VariableSettings.from_program(program).window
    rows = [_member("m-regular", registered_at=AT - 400 * DAY)]
    paid = [_order("m-regular", f"o-{n}", "10.00", AT - (n + 1) * DAY) for n in range(300)]
    paid.append(_order("m-regular", "o-now", "99.00", AT + timedelta(minutes=30)))
    with engine.begin() as conn:
        conn.execute(members.insert(), rows)
        conn.execute(orders.insert(), paid)
        conn.execute(refunds.insert(), [_refund("m-regular", "o-7", "4.00", AT - DAY)])
    moments = Moments(AT, AT + timedelta(hours=1), window, frozenset({"o-now"}))
    with engine.connect() as conn:
        history = fetch_histories(
            conn, ["m-regular"], program=program, fields={"qualifying_spend"}, moments=moments
        )["m-regular"]

    rows_back = [(o.order_id, o.count, o.total, o.paid_at) for o in history.orders]
    assert rows_back == [
        ("o-7", 1, Decimal("10.00"), AT - 8 * DAY),
        ("", 299, Decimal("2990.00"), AT - DAY),
        ("o-now", 1, Decimal("99.00"), AT + timedelta(minutes=30)),
    ]


def test_a_source_no_field_read_needs_is_not_fetched(engine: Engine, program: Program) -> None:
    _seed(engine)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        with engine.connect() as conn:
            history = fetch_histories(
                conn, ["m-tiered"], program=program, fields={"tier", "birthday_month"}
            )["m-tiered"]
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert "loyalty.tiers" in history.provided and "loyalty.referrals" not in history.provided
    assert not any("referrals" in statement for statement in statements)
