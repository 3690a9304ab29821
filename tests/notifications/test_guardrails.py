"""Guardrails decide in order (consent, address, suppression, quiet hours, caps), DST-safely."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications.guardrails import (
    CHANNELS,
    Decision,
    Policy,
    QuietHours,
    Recipient,
    cap_deferral,
    cap_periods,
    check_receivable,
    choose_channel,
    decide,
    quiet_hours_end,
)

NIGHT = QuietHours(time(21, 0), time(9, 0))
POLICY = Policy(business_timezone="Asia/Shanghai", quiet_hours=NIGHT, per_day=2, per_week=6)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def member(**overrides: object) -> Recipient:
    values: dict[str, object] = {
        "member_id": "m-1",
        "email": "alice@example.com",
        "phone": "+8613800000001",
        "push_token": "push-token-1",
        "timezone": "America/New_York",
        "consents": {"email": True, "sms": True, "push": True},
    }
    return Recipient(**(values | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        (member(), Decision("send")),
        (member(consents={"email": False, "sms": True}), Decision("suppress", "no_consent")),
        (member(consents={"sms": True}), Decision("suppress", "no_consent")),  # never asked
        (member(unsubscribed=frozenset({"email"})), Decision("suppress", "unsubscribed")),
        (member(email=None), Decision("suppress", "no_address")),
        (member(email="   "), Decision("suppress", "no_address")),
        (member(email=None, consents={}), Decision("suppress", "no_consent")),  # consent first
    ],
)
def test_consent_comes_before_the_address(recipient: Recipient, expected: Decision) -> None:
    assert check_receivable(recipient, "email") == expected


def test_the_first_receivable_channel_wins_and_the_others_say_why_not() -> None:
    recipient = member(consents={"email": True, "sms": False, "push": True}, push_token=None)

    chosen, refused = choose_channel(recipient, ["push", "sms", "email"])

    assert chosen == "email"
    assert refused == {
        "push": Decision("suppress", "no_address"),
        "sms": Decision("suppress", "no_consent"),
    }


def test_a_suppressed_address_stops_even_a_transactional_message() -> None:
    decision = decide(
        member(), channel="email", kind="transactional", suppressed=True, policy=POLICY,
        now=utc("2026-11-05T12:00:00-05:00"),
    )  # fmt: skip

    assert decision == Decision("suppress", "suppressed_address")


@pytest.mark.parametrize(
    ("zone", "now", "expected_end"),
    [
        # Plain nights, in the member's zone (not the business zone).
        ("Asia/Shanghai", "2026-11-05T22:30:00+08:00", "2026-11-06T09:00:00+08:00"),
        ("Asia/Shanghai", "2026-11-05T06:00:00+08:00", "2026-11-05T09:00:00+08:00"),
        ("Asia/Shanghai", "2026-11-05T21:00:00+08:00", "2026-11-06T09:00:00+08:00"),
        ("Asia/Shanghai", "2026-11-05T09:00:00+08:00", None),
        ("Asia/Shanghai", "2026-11-05T20:59:59+08:00", None),
        ("America/New_York", "2026-11-05T12:00:00+08:00", "2026-11-05T09:00:00-05:00"),
        # New York springs forward on 2026-03-08: the night is an hour shorter.
        ("America/New_York", "2026-03-07T22:00:00-05:00", "2026-03-08T09:00:00-04:00"),
        # ...and falls back on 2026-11-01: an hour longer, still ending at 09:00 local.
        ("America/New_York", "2026-10-31T22:00:00-04:00", "2026-11-01T09:00:00-05:00"),
        ("America/New_York", "2026-11-01T01:30:00-05:00", "2026-11-01T09:00:00-05:00"),
        # London springs forward on 2026-03-29 and falls back on 2026-10-25.
        ("Europe/London", "2026-03-28T23:30:00+00:00", "2026-03-29T09:00:00+01:00"),
        ("Europe/London", "2026-10-25T00:30:00+01:00", "2026-10-25T09:00:00+00:00"),
    ],
)
def test_quiet_hours_end_at_the_members_local_morning_across_dst(
    zone: str, now: str, expected_end: str | None
) -> None:
    end = quiet_hours_end(utc(now), ZoneInfo(zone), NIGHT)

    assert end == (utc(expected_end) if expected_end else None)


def test_a_quiet_window_ending_inside_a_skipped_hour_ends_as_long_after_the_gap_starts() -> None:
    window = QuietHours(time(1, 0), time(2, 30))  # 02:30 does not exist on 2026-03-08 in NY

    end = quiet_hours_end(utc("2026-03-08T01:15:00-05:00"), ZoneInfo("America/New_York"), window)

    assert end == utc("2026-03-08T03:30:00-04:00")


def test_a_quiet_window_ending_at_a_repeated_time_ends_at_its_first_occurrence() -> None:
    window = QuietHours(time(0, 0), time(1, 30))  # 01:30 happens twice on 2026-11-01 in NY

    end = quiet_hours_end(utc("2026-11-01T00:10:00-04:00"), ZoneInfo("America/New_York"), window)

    assert end == utc("2026-11-01T01:30:00-04:00")


def test_quiet_hours_defer_marketing_but_not_transactional_messages() -> None:
    night_in_new_york = utc("2026-11-05T23:00:00-05:00")
    common = {"channel": "push", "suppressed": False, "policy": POLICY, "now": night_in_new_york}

    marketing = decide(member(), kind="marketing", **common)  # type: ignore[arg-type]
    transactional = decide(member(), kind="transactional", **common)  # type: ignore[arg-type]

    assert marketing == Decision("defer", "quiet_hours", utc("2026-11-06T09:00:00-05:00"))
    assert transactional == Decision("send")


def test_a_member_without_a_zone_gets_the_business_zone() -> None:
    decision = decide(
        member(timezone=None), channel="push", kind="marketing", suppressed=False,
        policy=POLICY, now=utc("2026-11-05T22:00:00+08:00"),
    )  # fmt: skip

    assert decision.until == utc("2026-11-06T09:00:00+08:00")


@pytest.mark.parametrize(
    ("zone", "now", "day", "week"),
    [
        ("Asia/Shanghai", "2026-11-05T23:30:00+08:00", "d2026-11-05", "w2026-W45"),
        ("America/New_York", "2026-11-05T23:30:00+08:00", "d2026-11-05", "w2026-W45"),
        ("America/New_York", "2026-11-06T01:30:00+08:00", "d2026-11-05", "w2026-W45"),
        ("Asia/Shanghai", "2026-11-08T23:59:00+08:00", "d2026-11-08", "w2026-W45"),  # Sunday
        ("Asia/Shanghai", "2026-11-09T00:00:00+08:00", "d2026-11-09", "w2026-W46"),  # Monday
        ("Asia/Shanghai", "2027-01-01T10:00:00+08:00", "d2027-01-01", "w2026-W53"),
    ],
)
def test_caps_count_in_the_members_local_day_and_iso_week(
    zone: str, now: str, day: str, week: str
) -> None:
    assert cap_periods(utc(now), ZoneInfo(zone)) == {"day": day, "week": week}


@pytest.mark.parametrize(
    ("zone", "now", "period", "expected"),
    [
        # A full day cap waits for the member's next morning (midnight is inside quiet hours).
        ("Asia/Shanghai", "2026-11-05T15:00:00+08:00", "day", "2026-11-06T09:00:00+08:00"),
        ("America/New_York", "2026-03-07T15:00:00-05:00", "day", "2026-03-08T09:00:00-04:00"),
        ("Europe/London", "2026-10-24T15:00:00+01:00", "day", "2026-10-25T09:00:00+00:00"),
        # A full week cap waits for Monday morning.
        ("Asia/Shanghai", "2026-11-05T15:00:00+08:00", "week", "2026-11-09T09:00:00+08:00"),
        ("America/New_York", "2026-10-29T15:00:00-04:00", "week", "2026-11-02T09:00:00-05:00"),
    ],
)
def test_a_full_cap_defers_to_when_the_cap_allows_outside_quiet_hours(
    zone: str, now: str, period: str, expected: str
) -> None:
    assert cap_deferral(utc(now), ZoneInfo(zone), period, POLICY) == utc(expected)  # type: ignore[arg-type]


def test_without_quiet_hours_a_cap_defers_to_the_members_midnight() -> None:
    policy = Policy(business_timezone="UTC", per_day=1)

    until = cap_deferral(utc("2026-03-07T15:00:00-05:00"), ZoneInfo("America/New_York"), "day",
                         policy)  # fmt: skip

    assert until == utc("2026-03-08T00:00:00-05:00")


consent_values = st.sampled_from([True, False, None])
recipients = st.builds(
    Recipient,
    member_id=st.text(min_size=1, max_size=8),
    email=st.one_of(st.none(), st.just("a@example.com"), st.just(" ")),
    phone=st.one_of(st.none(), st.just("+8613800000001")),
    push_token=st.one_of(st.none(), st.just("token-123456")),
    timezone=st.sampled_from(["Asia/Shanghai", "America/New_York", "Europe/London", None]),
    consents=st.fixed_dictionaries({c: consent_values for c in CHANNELS}),
    unsubscribed=st.frozensets(st.sampled_from(CHANNELS)),
)


@given(
    recipient=recipients,
    channels=st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True),
    kind=st.sampled_from(["marketing", "transactional"]),
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
    ),
)
def test_no_guardrail_ever_lets_a_message_through_without_consent_and_an_address(
    recipient: Recipient, channels: list[str], kind: str, moment: datetime
) -> None:
    chosen, _ = choose_channel(recipient, channels)
    for channel in channels:
        decision = decide(
            recipient, channel=channel, kind=kind, suppressed=False, policy=POLICY, now=moment
        )
        allowed = (
            recipient.consents.get(channel) is True
            and channel not in recipient.unsubscribed
            and recipient.address(channel) is not None
        )
        if not allowed:
            assert decision.outcome == "suppress"
            assert chosen != channel
        elif decision.outcome == "defer":
            assert kind == "marketing"
            assert decision.until is not None and decision.until > moment
