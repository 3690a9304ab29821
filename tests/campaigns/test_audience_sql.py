"""An audience translated to SQL chooses exactly the members the Python evaluation chooses.

Thirty members, seeded, with the edges the variables define (a day's boundary to the
microsecond, orders and refunds after ``now``, refunds of orders older than the tier window,
settled referrals without a date, empty profile values, a registration after ``now``) are
judged by each expression twice: by :func:`campaigns.scans.audience_members` (the CEL library
over ``member_variables``), member by member, and by the SQL of
:mod:`campaigns.audience_sql`. TRUE, FALSE and NULL must be the Python path's true, false and
error; a part left to Python must never make SQL claim TRUE or FALSE wrongly.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert

from campaigns.audience_sql import audience_member_ids, translate_audience
from campaigns.scans import audience_members, member_ids_between
from core.events.tables import members, orders, refunds
from core.expressions import ExpressionError, compile_expression
from core.program.loader import load_program
from loyalty.tables import referrals

PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "program"
NOW = datetime.fromisoformat("2026-06-10T12:00:00+08:00")  # a Wednesday: now.weekday == 3
DAY, US = timedelta(days=1), timedelta(microseconds=1)

# Whole translations: SQL's TRUE / FALSE / NULL are Python's true / false / error.
COMPLETE = [
    "member.paid_orders >= 1 && member.referrals == 0 && member.days_since_last_order <= 30",
    "member.paid_orders >= 1 && member.days_since_last_order >= 90",
    "member.paid_orders >= 2 && member.referrals < 3 && member.days_since_last_order <= 45",
    "member.net_spend >= 300.5 || member.qualifying_spend > 200",
    "member.days_since_registered == 30 || member.days_since_registered == 31",
    "member.days_since_registered < 30.5 && member.days_since_registered > 29",
    "!(member.consents.email) && member.consents.sms == true",
    'member.locale in ["en", "zh-CN"] && member.locale != "en"',
    "member.locale == null || member.referred_by == null",
    "member.birthday_month == now.month || member.birthday_month >= 11.5",
    "member.days_since_last_order <= 30 || member.paid_orders == 0",
    "member.paid_orders == 0 ? member.days_since_registered >= 100 : member.net_spend < 500",
    "now.weekday == 3 && member.paid_orders > 0 && now.hour <= 12",
    'member.id == "m-03" || member.id in ["m-07", "m-11"] || 1 <= member.referrals',
    "member.qualifying_spend == 0.0 && member.net_spend > 0",
    "member.days_since_last_order != 30 && member.referrals >= 1u",
    "member.days_since_last_order > -1 || !(member.days_since_registered >= 0)",
    'member.referred_by == "TEA-1" && member.consents.push',
    "member.days_since_last_order < 31 && member.days_since_last_order >= 29",
]
# Partly translated: ``member.tier`` is loyalty's, and loyalty exposes no SQL for it.
PARTIAL = [
    'member.tier == "leaf" && member.paid_orders >= 2',
    'member.tier != "bud" || member.net_spend > 250',
    'member.locale.startsWith("zh") && member.days_since_registered > 100',
]
UNTRANSLATABLE = [
    'member.tier == "leaf"',
    "size(member.id) > 3 || member.tier_rank > 0",
    "member.paid_orders > -9223372036854775808",  # the literal alone is out of range
]


@pytest.fixture(scope="module")
def program() -> Any:
    return load_program(PROGRAM)


def _campaign(source: str | None) -> Any:
    audience = compile_expression(source) if source is not None else None
    schedule = SimpleNamespace(audience=audience, cron="0 10 * * 6")
    return SimpleNamespace(id="audience-test", trigger=SimpleNamespace(schedule=schedule))


def _registered(rng: random.Random, n: int) -> datetime | None:
    edges = {0: None, 1: NOW + DAY, 2: NOW - 30 * DAY, 3: NOW - 30 * DAY - US,
             4: NOW - 31 * DAY + US, 5: NOW - 31 * DAY, 6: None}  # fmt: skip
    return edges[n] if n in edges else NOW - timedelta(seconds=rng.randrange(1, 800 * 86400))


def _paid_at(rng: random.Random) -> datetime:
    return rng.choice(
        [NOW - 30 * DAY, NOW - 30 * DAY - US, NOW - 31 * DAY + US, NOW - 31 * DAY, NOW - 90 * DAY,
         NOW - 365 * DAY, NOW - 365 * DAY + US, NOW + timedelta(hours=1), NOW,
         NOW - timedelta(seconds=rng.randrange(1, 700 * 86400))]
    )  # fmt: skip


def _member_rows(rng: random.Random, n: int) -> dict[str, list[dict[str, Any]]]:
    member_id = f"m-{n:02d}"
    rows: dict[str, list[dict[str, Any]]] = {"members": [], "orders": [], "refunds": []}
    rows["members"].append({
        "member_id": member_id, "registered_at": _registered(rng, n), "first_seen_at": NOW,
        "birthday": rng.choice([None, date(1990, 6, 1), date(1985, 12, 24), date(2000, 3, 9)]),
        "locale": rng.choice([None, "", "en", "zh-CN"]),
        "referred_by": rng.choice([None, "", "TEA-1"]),
        **{f"consent_{c}": rng.choice([None, True, False]) for c in ("email", "sms", "push")},
    })  # fmt: skip
    for k in range(rng.choice([0, 0, 1, 1, 2, 3, 5])):
        order_id, total = f"o-{n}-{k}", Decimal(rng.randrange(100, 90_000)) / 100
        paid_at = _paid_at(rng)
        rows["orders"].append({
            "order_id": order_id, "member_id": member_id, "total": total, "currency": "CNY",
            "paid_at": paid_at, "items": [], "coupon_codes": [], "points_redeemed": 0,
            "event_id": f"e-{order_id}",
        })  # fmt: skip
        for r in range(rng.choice([0, 0, 1, 2])):
            amount = total if rng.random() < 0.3 else (total / 3).quantize(Decimal("0.01"))
            refunded_at = paid_at + rng.choice([DAY, 400 * DAY, timedelta(hours=2)])
            rows["refunds"].append({"event_id": f"r-{order_id}-{r}", "order_id": order_id,
                                    "member_id": member_id, "amount": amount,
                                    "refunded_at": refunded_at})  # fmt: skip
    return rows


def _referral_rows(rng: random.Random, count: int) -> list[dict[str, Any]]:
    return [
        {"referee_id": f"referee-{k}", "code": "TEA-1", "referrer_id": f"m-{rng.randrange(30):02d}",
         "status": rng.choice(["settled", "settled", "pending", "rejected"]),
         "registered_at": NOW - 60 * DAY, "updated_at": NOW,
         "decided_at": rng.choice([None, NOW - 5 * DAY, NOW + DAY, NOW])}
        for k in range(count)
    ]  # fmt: skip


@pytest.fixture
def shop(engine: Engine) -> Engine:
    rng = random.Random(20260610)
    tables: dict[str, list[dict[str, Any]]] = {"members": [], "orders": [], "refunds": []}
    for n in range(30):
        for name, rows in _member_rows(rng, n).items():
            tables[name] += rows
    with engine.begin() as conn:
        for table in (members, orders, refunds):
            conn.execute(insert(table), tables[table.name])
        conn.execute(insert(referrals), _referral_rows(rng, 25))
    return engine


def python_states(conn: Connection, source: str, program: Any) -> dict[str, bool | str]:
    """Each registered member's audience by the Python path: True, False or "error"."""
    campaign, states = _campaign(source), dict[str, bool | str]()
    for member_id in member_ids_between(conn, None, None):
        try:
            chosen = audience_members(conn, campaign, [member_id], program=program, now=NOW)
        except ExpressionError:
            states[member_id] = "error"
        else:
            states[member_id] = bool(chosen)
    return states


def sql_states(conn: Connection, source: str, program: Any) -> dict[str, bool | None]:
    translated = translate_audience(
        source, program=program, now=NOW, dialect=conn.dialect.name, partial=True
    )
    assert translated is not None
    decided = {row[0]: row[1] for row in conn.execute(translated.query())}
    return {m: (None if decided[m] is None else True) if m in decided else False
            for m in member_ids_between(conn, None, None)}  # fmt: skip


@pytest.mark.parametrize("source", COMPLETE)
def test_a_whole_translation_decides_every_member_as_python_does(
    shop: Engine, program: Any, source: str
) -> None:
    with shop.connect() as conn:
        expected = python_states(conn, source, program)
        found = sql_states(conn, source, program)
        translated = translate_audience(source, program=program, now=NOW,
                                        dialect=conn.dialect.name)  # fmt: skip

    assert translated is not None and translated.complete
    assert {m: "error" if v is None else v for m, v in found.items()} == expected
    assert len(set(expected.values())) > 1, "the members must not all agree: a weak test"


@pytest.mark.parametrize("source", PARTIAL)
def test_a_partial_translation_is_never_wrong_where_it_decides(
    shop: Engine, program: Any, source: str
) -> None:
    with shop.connect() as conn:
        expected = python_states(conn, source, program)
        found = sql_states(conn, source, program)
        whole = translate_audience(source, program=program, now=NOW, dialect=conn.dialect.name)

    assert whole is None
    assert all(expected[m] == v for m, v in found.items() if v is not None)
    assert any(v is not None for v in found.values()), "SQL decides some members on its own"


@pytest.mark.parametrize("source", COMPLETE + PARTIAL)
def test_the_ids_are_those_python_chooses_over_ranges(
    shop: Engine, program: Any, source: str
) -> None:
    campaign = _campaign(source)
    with shop.connect() as conn:
        ids = member_ids_between(conn, None, None)
        try:
            expected: list[str] | str = audience_members(conn, campaign, ids, program=program,
                                                         now=NOW)  # fmt: skip
        except ExpressionError:
            expected = "error"
        found: list[str] | str = []
        for low, high in ((None, "m-10"), ("m-10", "m-21"), ("m-21", None)):
            try:
                part = audience_member_ids(conn, campaign, program=program, now=NOW, low=low,
                                           high=high)  # fmt: skip
            except ExpressionError:
                found = "error"
                break
            assert part is not None
            assert isinstance(found, list)
            found += part

    if expected == "error":
        assert found == "error"
    else:
        assert found == expected


def test_the_example_campaigns_audience_is_translated_whole(shop: Engine, program: Any) -> None:
    campaign = program.campaigns["referral-invite"]
    with shop.connect() as conn:
        ids = member_ids_between(conn, None, None)
        expected = audience_members(conn, campaign, ids, program=program, now=NOW)
        found = audience_member_ids(conn, campaign, program=program, now=NOW)
        source = campaign.trigger.schedule.audience.source
        translated = translate_audience(source, program=program, now=NOW,
                                        dialect=conn.dialect.name)  # fmt: skip

    assert translated is not None and translated.complete
    assert found == expected and expected


def test_without_an_audience_every_registered_member_of_the_range_is_in(
    shop: Engine, program: Any
) -> None:
    with shop.connect() as conn:
        found = audience_member_ids(conn, _campaign(None), program=program, now=NOW, low="m-05",
                                    high="m-15")  # fmt: skip
        expected = member_ids_between(conn, "m-05", "m-15")

    assert found == expected and len(found) == 9  # m-06 is not registered


@pytest.mark.parametrize("source", UNTRANSLATABLE)
def test_an_audience_with_nothing_translatable_is_left_to_python(
    shop: Engine, program: Any, source: str
) -> None:
    with shop.connect() as conn:
        found = audience_member_ids(conn, _campaign(source), program=program, now=NOW)
        translated = translate_audience(source, program=program, now=NOW,
                                        dialect=conn.dialect.name, partial=True)  # fmt: skip

    assert found is None and translated is None
