"""Wallets on both databases: issue (idempotent by key), generate, expire, revoke, show."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from coupon_factories import NOW, registered, send
from sqlalchemy import Engine, func, select

from core.members import fetch_member_view
from core.program.loader import Program
from coupons import wallet
from coupons.codes import generate_codes
from coupons.errors import CouponNotIssuable, UnknownCoupon, UnknownMember
from coupons.tables import coupon_codes
from coupons.wallet import (
    expire_codes,
    fetch_wallet,
    generate_coupon_codes,
    issue_coupon,
    revoke_code,
)


@pytest.fixture
def member(engine: Engine, program: Program) -> str:
    send(engine, program, registered("m-1"))
    return "m-1"


def issue(engine: Engine, program: Program, coupon_id: str, **options: object) -> object:
    with engine.begin() as conn:
        return issue_coupon(conn, program, coupon_id=coupon_id, member_id="m-1", now=NOW, **options)


def test_an_issued_code_is_in_the_wallet_until_valid_for_has_passed(
    engine: Engine, program: Program, member: str
) -> None:
    issued = issue(engine, program, "first-brew-15")

    with engine.connect() as conn:
        [held] = fetch_wallet(conn, member)
    assert held == issued
    assert (held.status, held.expires_at) == ("issued", NOW + timedelta(days=21))


def test_a_code_expires_at_the_end_of_valid_between_when_that_comes_first(
    engine: Engine, program: Program, member: str
) -> None:
    issued = issue(engine, program, "spring-harvest-ladder")

    assert issued.expires_at == datetime(2027, 4, 30, 15, 59, 59, tzinfo=UTC)


def test_issuing_again_with_the_same_key_returns_the_first_code(
    engine: Engine, program: Program, member: str
) -> None:
    first = issue(engine, program, "first-brew-15", issue_key="first-brew:m-1")
    again = issue(engine, program, "first-brew-15", issue_key="first-brew:m-1")
    other = issue(engine, program, "first-brew-15", issue_key="first-brew:m-1:second")

    assert again == first
    assert other.code != first.code
    with engine.connect() as conn:
        assert len(fetch_wallet(conn, member)) == 2


@pytest.mark.parametrize(
    ("coupon_id", "member_id", "error", "message"),
    [
        ("first-brew-l5", "m-1", UnknownCoupon, "no coupon by the id of 'first-brew-l5'"),
        ("first-brew-15", "m-nobody", UnknownMember, "no member by the id of 'm-nobody'"),
    ],
)
def test_issuing_to_an_unknown_coupon_or_member_is_refused(
    engine: Engine,
    program: Program,
    member: str,
    coupon_id: str,
    member_id: str,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message), engine.begin() as conn:
        issue_coupon(conn, program, coupon_id=coupon_id, member_id=member_id, now=NOW)


def test_a_coupon_whose_window_has_ended_is_not_issued(
    engine: Engine, program: Program, member: str
) -> None:
    with pytest.raises(CouponNotIssuable, match="ended at 2027-04-30"), engine.begin() as conn:
        issue_coupon(
            conn,
            program,
            coupon_id="spring-harvest-ladder",
            member_id=member,
            now=NOW + timedelta(days=30),
        )


def test_generated_codes_are_stored_distinct_and_unclaimed(
    engine: Engine, program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wallet, "GENERATE_BATCH", 1000)

    with engine.begin() as conn:
        codes = generate_coupon_codes(conn, program, coupon_id="free-shipping", count=2500, now=NOW)

    with engine.connect() as conn:
        stored = conn.execute(
            select(func.count(), func.count(coupon_codes.c.member_id)).where(
                coupon_codes.c.code.in_(codes[:900])
            )
        ).one()
        total = conn.execute(select(func.count()).select_from(coupon_codes)).scalar()
    assert len(set(codes)) == 2500 == total
    assert tuple(stored) == (900, 0)  # nobody holds them yet


def test_a_generated_code_that_is_already_stored_is_replaced(
    engine: Engine, program: Program
) -> None:
    [clash] = generate_codes(1, rng=random.Random(9))
    with engine.begin() as conn:
        generate_coupon_codes(conn, program, coupon_id="free-shipping", count=1, now=NOW)
        conn.execute(coupon_codes.update().values(code=clash))

        codes = generate_coupon_codes(
            conn, program, coupon_id="free-shipping", count=3, now=NOW, rng=random.Random(9)
        )

    assert clash not in codes and len(set(codes)) == 3


def test_the_daily_job_expires_every_code_past_its_expiry(
    engine: Engine, program: Program, member: str
) -> None:
    short = issue(engine, program, "tea-day-ninety")  # valid for 1 day
    long = issue(engine, program, "free-shipping")  # 30 days

    with engine.begin() as conn:
        expired = expire_codes(conn, now=NOW + timedelta(days=2))
        statuses = dict(conn.execute(select(coupon_codes.c.code, coupon_codes.c.status)).all())

    assert expired == 1
    assert statuses == {short.code: "expired", long.code: "issued"}


def test_a_revoked_code_leaves_the_usable_wallet(
    engine: Engine, program: Program, member: str
) -> None:
    issued = issue(engine, program, "free-shipping")

    with engine.begin() as conn:
        assert revoke_code(conn, issued.code.lower(), now=NOW)
        assert not revoke_code(conn, issued.code, now=NOW)
        assert fetch_wallet(conn, member) == []


def test_members_show_lists_the_wallet_with_statuses_as_of_now(
    engine: Engine, program: Program, member: str
) -> None:
    daily = issue(engine, program, "tea-day-ninety")
    monthly = issue(engine, program, "free-shipping")

    with engine.connect() as conn:
        view = fetch_member_view(conn, member, now=NOW + timedelta(days=2), program=program)

    assert sorted(view["coupons"], key=lambda c: c["coupon_id"]) == [
        {
            "coupon_id": "free-shipping",
            "code": monthly.code,
            "status": "issued",
            "expires_at": NOW + timedelta(days=30),
            "issued_at": NOW,
            "order_id": None,
        },
        {
            "coupon_id": "tea-day-ninety",
            "code": daily.code,
            "status": "expired",  # before the daily job has run
            "expires_at": NOW + timedelta(days=1),
            "issued_at": NOW,
            "order_id": None,
        },
    ]
