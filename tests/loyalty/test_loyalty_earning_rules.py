"""Earning rules of program.yaml, as pure functions: rounding, multipliers, boosts, caps, dates."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from loyalty_shop import at, event, paid, program_with, registered, reviewed, shared

from core.cel.history import MemberHistory, Profile
from core.cel.variables import VariableSettings, event_variables, member_variables
from core.program.program_file import BoostRule, Cap, FixedRule
from loyalty.calendar import expiry_instant, now_variables, period_start
from loyalty.earning import EarnRules, credits_for_event
from loyalty.ladder import TierLadder
from loyalty.variables import REFERRALS, TIERS, ReferralFacts, TierFacts


def earn(
    program: Any,
    payload: dict,
    *,
    tier: str = "leaf",
    birthday: str | None = None,
    caps: Counter | None = None,
) -> dict[str, int]:
    """Points per rule that ``payload`` earns for a member in ``tier`` born in ``birthday``."""
    rules, ladder = EarnRules.from_program(program), TierLadder.from_program(program)
    shop_event = event(payload)
    history = MemberHistory(
        shop_event.member_id,
        profile=Profile(birthday=datetime.fromisoformat(birthday).date() if birthday else None),
        provided={TIERS: TierFacts(ladder, tier), REFERRALS: ReferralFacts()},
    )
    level = ladder.level(tier)
    settings = VariableSettings(rules.zone, ladder.window)
    member = member_variables(history, settings, at=shop_event.occurred_at)
    variables = {**event_variables(shop_event, rules.zone), "member": member}
    credits = credits_for_event(
        shop_event,
        rules=rules,
        level=level,
        variables=variables,
        caps_used=caps if caps is not None else Counter(),
    )
    return {credit.rule_id: credit.points for credit in credits}


def with_birthday_boost(program: Any) -> Any:
    """The example program and a boost that reads the member: double in the birthday month."""
    boost = BoostRule.model_validate(
        {
            "id": "birthday-double",
            "boosts": "purchase",
            "when": "member.birthday_month == now.month",
            "multiplier": 2,
        }
    )
    return program_with(program, points={"earn": (*program.program_file.points.earn, boost)})


@pytest.mark.parametrize(
    ("total", "tier", "points"),
    [
        ("828.00", "leaf", 828),
        ("828.99", "leaf", 828),  # 1 point per 1 CNY, rounded down
        ("0.99", "leaf", 0),  # nothing to credit
        ("828.00", "bud", 1035),  # × 1.25
        ("99.99", "bud", 124),  # 124.9875
        ("333.33", "oolong", 499),  # 499.995
        ("828.50", "puer", 1657),
    ],
)
def test_purchase_points_are_total_per_amount_times_the_tier_multiplier_rounded_down(
    program: Any, total: str, tier: str, points: int
) -> None:
    earned = earn(program, paid("m-1", "o-1", total, "2026-06-10 12:00"), tier=tier)

    assert earned.get("purchase", 0) == points


@pytest.mark.parametrize(
    ("birthday", "paid_at", "tier", "points"),
    [
        ("1990-06-15", "2026-06-10 12:00", "leaf", 199),  # 99.99 × 2 = 199.98
        ("1990-06-15", "2026-06-10 12:00", "bud", 249),  # 99.99 × 1.25 × 2 = 249.975, one floor
        ("1990-05-15", "2026-06-10 12:00", "leaf", 99),  # not the birthday month
        ("1990-07-02", "2026-07-01 01:00", "leaf", 199),  # July in Shanghai, June in UTC
        ("1990-06-02", "2026-07-01 01:00", "leaf", 99),
        (None, "2026-06-10 12:00", "leaf", 99),  # no birthday known
        ("1990-04-15", "2026-04-10 12:00", "leaf", 599),  # × 3 spring harvest × 2 = 599.94
    ],
)
def test_the_birthday_month_doubles_the_purchase_points_in_the_business_time_zone(
    program: Any, birthday: str | None, paid_at: str, tier: str, points: int
) -> None:
    boosted = with_birthday_boost(program)

    earned = earn(boosted, paid("m-1", "o-1", "99.99", paid_at), tier=tier, birthday=birthday)

    assert earned["purchase"] == points


@pytest.mark.parametrize(
    ("paid_at", "points"),
    [
        ("2026-04-10 12:00", 299),  # 99.99 × 3 = 299.97
        ("2026-04-01 01:00", 299),  # April in Shanghai, March in UTC
        ("2026-05-01 01:00", 99),  # May in Shanghai, April in UTC
        ("2026-03-31 23:59", 99),
    ],
)
def test_the_spring_harvest_triples_the_purchase_points_in_april_in_the_business_time_zone(
    program: Any, paid_at: str, points: int
) -> None:
    earned = earn(program, paid("m-1", "o-1", "99.99", paid_at))

    assert earned["purchase"] == points


@pytest.mark.parametrize(
    ("payload", "earned"),
    [
        (registered("m-1", "2026-06-10 12:00"), {"welcome": 200}),
        (reviewed("m-1", "2026-06-10 12:00", has_photo=True), {"photo-review": 30}),
        (reviewed("m-1", "2026-06-10 12:00", has_photo=False), {}),  # when: event.data.has_photo
        (shared("m-1", "2026-06-10 12:00"), {"share": 10}),
    ],
)
def test_fixed_points_are_awarded_on_their_event_when_the_condition_holds(
    program: Any, payload: dict, earned: dict[str, int]
) -> None:
    assert earn(program, payload) == earned


def test_a_daily_cap_stops_awards_after_the_maximum_and_resets_at_business_midnight(
    program: Any,
) -> None:
    daily = tuple(
        rule.model_copy(update={"cap": Cap(per="day", max=3)})
        if rule.id == "photo-review"
        else rule
        for rule in program.program_file.points.earn
    )
    capped = program_with(program, points={"earn": daily})
    caps: Counter = Counter()
    times = [
        "2026-06-10 00:05",
        "2026-06-10 09:00",
        "2026-06-10 18:00",
        "2026-06-10 23:59",
        "2026-06-11 00:00",
    ]

    awarded = [earn(capped, reviewed("m-1", t), caps=caps).get("photo-review", 0) for t in times]

    assert awarded == [30, 30, 30, 0, 30]


@pytest.mark.parametrize(
    ("per", "times", "awarded"),
    [
        # 2026-06-14 is a Sunday: the week starting Monday 06-15 has its own cap.
        (
            "week",
            ["2026-06-08 10:00", "2026-06-10 10:00", "2026-06-14 23:00", "2026-06-15 00:01"],
            [5, 5, 0, 5],
        ),
        (
            "month",
            ["2026-06-01 00:00", "2026-06-20 10:00", "2026-06-30 23:59", "2026-07-01 00:00"],
            [5, 5, 0, 5],
        ),
    ],
)
def test_weekly_and_monthly_caps_count_awards_per_business_week_and_month(
    program: Any, per: str, times: list[str], awarded: list[int]
) -> None:
    share = FixedRule(id="share", on="content.shared", points=5, cap=Cap(per=per, max=2))
    earn_rules = tuple(share if r.id == "share" else r for r in program.program_file.points.earn)
    capped = program_with(program, points={"earn": earn_rules})
    caps: Counter = Counter()

    got = [earn(capped, shared("m-1", t), caps=caps).get("share", 0) for t in times]

    assert got == awarded


def test_a_purchase_lot_is_pending_for_the_return_window_and_expires_730_days_after(
    program: Any,
) -> None:
    rules = EarnRules.from_program(program)

    available, expires = rules.lot_dates(at("2026-06-10 21:40"), pending_days=15)

    assert available == at("2026-06-25 21:40")
    assert expires == at("2028-06-25 00:00")  # usable to the end of 2028-06-24 (a leap year)


@pytest.mark.parametrize(
    ("available", "days", "expires"),
    [
        ("2026-06-10 00:00", 365, "2027-06-11 00:00"),
        ("2026-06-10 23:59", 365, "2027-06-11 00:00"),
        ("2028-02-29 12:00", 1, "2028-03-02 00:00"),
    ],
)
def test_rolling_expiry_ends_with_the_business_day_the_days_reach(
    program: Any, available: str, days: int, expires: str
) -> None:
    zone = EarnRules.from_program(program).zone

    assert expiry_instant(at(available), days, zone) == at(expires)


def test_no_expiry_policy_gives_lots_that_never_expire(program: Any) -> None:
    forever = program_with(
        program,
        points={
            "expiry": program.program_file.points.expiry.model_copy(
                update={"policy": "none", "days": None}
            )
        },
    )

    assert EarnRules.from_program(forever).lot_dates(at("2026-06-10 12:00"))[1] is None


def test_business_periods_start_at_shanghai_midnight_monday_and_the_first(program: Any) -> None:
    zone = EarnRules.from_program(program).zone
    moment = at("2026-06-10 01:00")  # a Wednesday; 2026-06-09 17:00 in UTC

    assert period_start(moment, "day", zone) == at("2026-06-10 00:00")
    assert period_start(moment, "week", zone) == at("2026-06-08 00:00")
    assert period_start(moment, "month", zone) == at("2026-06-01 00:00")
    assert now_variables(datetime(2026, 6, 9, 17, tzinfo=UTC), zone) == {
        "year": 2026,
        "month": 6,
        "day": 10,
        "weekday": 3,
        "hour": 1,
    }


def test_a_credit_explains_every_number_behind_it(program: Any) -> None:
    boosted = with_birthday_boost(program)
    rules, ladder = EarnRules.from_program(boosted), TierLadder.from_program(boosted)
    order = event(paid("m-1", "o-9", "99.99", "2026-06-10 12:00"))
    member = {"birthday_month": 6}
    variables = {**event_variables(order, rules.zone), "member": member}

    [credit] = credits_for_event(
        order, rules=rules, level=ladder.level("bud"), variables=variables, caps_used=Counter()
    )

    assert credit.idempotency_key == "earn:purchase:order:o-9"
    assert credit.reason == (
        "purchase: order o-9 paid 99.99 / 1 × 1.25 (bud) × 2 (birthday-double) = 249.975 → 249"
    )
    assert credit.details["tier_multiplier"] == "1.25"
    assert Decimal(credit.details["exact"]) == Decimal("249.975")
