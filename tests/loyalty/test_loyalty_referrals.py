"""Referrals: codes, every outcome and rejection reason, settlement and its event."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from loyalty_shop import at, ingest_batch, paid, program_with, refunded, registered, replay
from sqlalchemy import Engine, select

from core.events.handlers import unit_of_work
from core.events.tables import events
from loyalty.referral_codes import ALPHABET, assign_codes, fetch_codes, generate_code
from loyalty.referral_store import settle_referrals
from loyalty.referrals import Contact, FirstOrder, ReferralFacts, assess, settle
from loyalty.tables import referrals

REFEREE = Contact("m-bob", "+8613800000007", "bob@example.com")
REFERRER = Contact("m-alice", "+8613800000000", "alice@example.com")
JOINED = at("2026-11-06 11:00")


def facts(
    *,
    referrer: Contact | None = REFERRER,
    referee: Contact = REFEREE,
    order: tuple[str, str] | None = ("268.00", "2026-11-07 19:00"),
    refunded: str = "0",
    settled: int = 0,
) -> ReferralFacts:
    first = (
        FirstOrder("o-b1", Decimal(order[0]), at(order[1]), Decimal(refunded)) if order else None
    )
    return ReferralFacts(referee, referrer, "ALICE88", JOINED, first, settled)


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        (facts(), "pending", None),
        (facts(order=None), "pending", None),
        (facts(referrer=Contact("m-bob")), "rejected", "self_referral"),
        (facts(referrer=Contact("m-x", "+86 138-0000-0007")), "rejected", "shared_phone"),
        (facts(referrer=Contact("m-x", None, "Bob@Example.com ")), "rejected", "shared_email"),
        (facts(order=("167.99", "2026-11-07 19:00")), "rejected", "first_order_below_minimum"),
        (facts(order=("168.00", "2026-11-07 19:00")), "pending", None),
        (facts(order=("500.00", "2026-12-21 11:01")), "rejected", "first_order_too_late"),
        (facts(order=("500.00", "2026-12-21 11:00")), "pending", None),
        (facts(referrer=None), "pending", None),  # the referrer may register later
    ],
)
def test_what_the_facts_decide_as_soon_as_they_are_known(
    program: Any, case: ReferralFacts, status: str, reason: str | None
) -> None:
    outcome = assess(case, program.program_file.referral)

    assert (outcome.status, outcome.reason) == (status, reason)


def test_reject_checks_not_listed_in_the_program_do_not_apply(program: Any) -> None:
    lenient = program.program_file.referral.model_copy(update={"reject": ("self_referral",)})

    outcome = assess(facts(referrer=Contact("m-x", REFEREE.phone, REFEREE.email)), lenient)

    assert outcome.status == "pending"


@pytest.mark.parametrize(
    ("case", "when", "status", "reason"),
    [
        (facts(), "2026-11-22 18:59", "pending", None),  # settles 15 days after payment
        (facts(), "2026-11-22 19:00", "settled", None),
        (facts(refunded="268.00"), "2026-11-22 19:00", "rejected", "order_refunded"),
        (facts(refunded="100.00"), "2026-11-22 19:00", "settled", None),  # 168 left: enough
        (facts(refunded="100.01"), "2026-11-22 19:00", "rejected", "order_refunded"),
        (facts(settled=9), "2026-11-22 19:00", "settled", None),
        (facts(settled=10), "2026-11-22 19:00", "rejected", "monthly_cap_reached"),
        (facts(referrer=None), "2026-11-22 19:00", "rejected", "unknown_code"),
        (facts(order=None), "2026-12-21 11:00", "pending", None),
        (facts(order=None), "2026-12-21 11:01", "rejected", "no_qualifying_order"),
    ],
)
def test_what_settlement_decides_once_the_return_window_has_passed(
    program: Any, case: ReferralFacts, when: str, status: str, reason: str | None
) -> None:
    outcome = settle(case, program.program_file.referral, now=at(when))

    assert (outcome.status, outcome.reason) == (status, reason)


def test_generated_codes_are_short_unambiguous_and_come_from_the_rng_given() -> None:
    codes = [generate_code(random.Random(7)) for _ in range(2)]

    assert codes[0] == codes[1] and len(codes[0]) == 8
    assert set(codes[0]) <= set(ALPHABET) and not set("01OIL") & set(ALPHABET)


def test_members_keep_the_shops_code_or_get_a_generated_one(engine: Engine) -> None:
    now = at("2026-11-01 10:00")
    with engine.begin() as conn:
        assign_codes(conn, {"m-1": "ALICE88", "m-2": None}, now=now, rng=random.Random(1))
        assign_codes(conn, {"m-3": "ALICE88", "m-1": "OTHER"}, now=now, rng=random.Random(2))
        codes = fetch_codes(conn, ["m-1", "m-2", "m-3"])

    assert codes["m-1"] == "ALICE88"  # a member keeps their first code
    assert codes["m-2"] == generate_code(random.Random(1))
    assert codes["m-3"] not in ("ALICE88", codes["m-2"])  # a taken code is not shared


def referral_row(engine: Engine, referee: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(referrals).where(referrals.c.referee_id == referee)).one()


def settle_at(engine: Engine, program: Any, when: str) -> Any:
    with unit_of_work(engine, now=at(when), program=program) as ctx:
        return settle_referrals(ctx, as_of=at(when), program=program)


def test_a_referral_settles_after_the_return_window_and_tells_campaigns(
    engine: Engine, program: Any
) -> None:
    replay(
        engine,
        program,
        registered("m-alice", "2026-11-01 10:00", referral_code="ALICE88"),
        registered("m-bob", "2026-11-06 11:00", referred_by="ALICE88"),
        paid("m-bob", "o-b1", "268.00", "2026-11-07 19:00"),
    )
    assert referral_row(engine, "m-bob").status == "pending"

    early = settle_at(engine, program, "2026-11-22 00:30")
    late = settle_at(engine, program, "2026-11-23 00:30")
    again = settle_at(engine, program, "2026-11-24 00:30")

    assert (early.settled, late.settled, again.settled) == (0, 1, 0)
    row = referral_row(engine, "m-bob")
    assert (row.status, row.referrer_id, row.order_id) == ("settled", "m-alice", "o-b1")
    with engine.connect() as conn:
        emitted = conn.execute(
            select(events.c.member_id, events.c.data).where(events.c.type == "referral.qualified")
        ).one()
    assert emitted.member_id == "m-alice"
    assert emitted.data == {
        "referrer_member_id": "m-alice",
        "referee_member_id": "m-bob",
        "order_id": "o-b1",
        "referral_code": "ALICE88",
    }


@pytest.mark.parametrize(
    ("referee_data", "order_total", "reason"),
    [
        ({"phone": "+8613800000000"}, "268.00", "shared_phone"),
        ({"email": "ALICE@example.com"}, "268.00", "shared_email"),
        ({}, "50.00", "first_order_below_minimum"),
    ],
)
def test_each_rejection_is_recorded_with_its_reason(
    engine: Engine, program: Any, referee_data: dict, order_total: str, reason: str
) -> None:
    replay(
        engine,
        program,
        registered(
            "m-alice",
            "2026-11-01 10:00",
            referral_code="ALICE88",
            phone="+8613800000000",
            email="alice@example.com",
        ),
        registered("m-bob", "2026-11-06 11:00", referred_by="ALICE88", **referee_data),
        paid("m-bob", "o-b1", order_total, "2026-11-07 19:00"),
    )

    row = referral_row(engine, "m-bob")
    assert (row.status, row.reason) == ("rejected", reason)


def test_a_referee_referring_themself_is_rejected(engine: Engine, program: Any) -> None:
    replay(
        engine,
        program,
        registered("m-bob", "2026-11-06 11:00", referral_code="BOB1", referred_by="BOB1"),
    )

    assert (referral_row(engine, "m-bob").status, referral_row(engine, "m-bob").reason) == (
        "rejected",
        "self_referral",
    )


def test_a_refunded_first_order_does_not_settle(engine: Engine, program: Any) -> None:
    replay(
        engine,
        program,
        registered("m-alice", "2026-11-01 10:00", referral_code="ALICE88"),
        registered("m-bob", "2026-11-06 11:00", referred_by="ALICE88"),
        paid("m-bob", "o-b1", "268.00", "2026-11-07 19:00"),
        refunded("m-bob", "o-b1", "268.00", "2026-11-09 19:00"),
    )

    settle_at(engine, program, "2026-11-23 00:30")

    assert referral_row(engine, "m-bob").reason == "order_refunded"


def test_the_monthly_cap_per_referrer_rejects_the_referrals_beyond_it(
    engine: Engine, program: Any
) -> None:
    capped = program_with(program, referral={"monthly_cap_per_referrer": 2})
    friends = [f"m-f{i}" for i in range(3)]
    replay(
        engine,
        capped,
        registered("m-alice", "2026-11-01 10:00", referral_code="ALICE88"),
        *[
            registered(f, f"2026-11-02 1{i}:00", referred_by="ALICE88")
            for i, f in enumerate(friends)
        ],
        *[paid(f, f"o-{f}", "200.00", f"2026-11-03 1{i}:00") for i, f in enumerate(friends)],
    )

    report = settle_at(engine, capped, "2026-11-19 00:30")

    assert (report.settled, report.rejected) == (2, 1)
    assert referral_row(engine, "m-f2").reason == "monthly_cap_reached"


def test_out_of_order_events_still_decide_the_referral(engine: Engine, program: Any) -> None:
    ingest_batch(engine, program, paid("m-bob", "o-b1", "268.00", "2026-11-07 19:00"))
    ingest_batch(engine, program, registered("m-bob", "2026-11-06 11:00", referred_by="ALICE88"))
    assert referral_row(engine, "m-bob").order_id == "o-b1"  # the order already qualified

    ingest_batch(
        engine, program, registered("m-alice", "2026-11-01 10:00", referral_code="ALICE88")
    )
    settle_at(engine, program, "2026-11-23 00:30")

    assert (referral_row(engine, "m-bob").status, referral_row(engine, "m-bob").referrer_id) == (
        "settled",
        "m-alice",
    )
