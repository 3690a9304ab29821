"""Guardrails as campaigns meet them: a capped campaign step is skipped, a replay is not
counted twice, and a preview says which channel and when."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from notification_helpers import NOW, fetch_message
from sqlalchemy import Engine, select

from core.events.handlers import unit_of_work
from core.program.loader import Program
from notifications.dispatch import send_messages
from notifications.dispatcher import Dispatcher
from notifications.errors import TransientDeliveryError
from notifications.guardrails import Policy
from notifications.preview import choose_preview_channel, planned_send_time, render_preview
from notifications.records import replay
from notifications.requests import request_message
from notifications.samples import sample_variables
from notifications.tables import cap_counters
from notifications.transports.stub import StubTransport


@pytest.fixture
def ask(engine: Engine, program: Program) -> Callable[..., str]:
    """Request a marketing push message; returns its id."""

    def request(member_id: str = "m-1", *, key: str = "k-1", **overrides: Any) -> str:
        values: dict[str, Any] = {
            "member_id": member_id,
            "channels": ["push"],
            "template_id": "welcome",
            "variables": sample_variables(program, "zh-CN"),
            "kind": "marketing",
            "dedupe_key": key,
        } | overrides
        with unit_of_work(engine, now=NOW, program=program) as ctx:
            return request_message(ctx, now=NOW, **values).message_id  # type: ignore[no-any-return]

    return request


def send(engine: Engine, dispatcher: Dispatcher, *ids: str, at: datetime = NOW) -> dict[str, str]:
    return send_messages(engine, ids, now=at, dispatcher=dispatcher).outcomes


def day_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(cap_counters.c.period, cap_counters.c.count)).all()
    return {period: count for period, count in rows if period.startswith("d")}


def test_a_replayed_dead_marketing_message_is_not_counted_against_the_cap_again(
    engine: Engine, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-1")  # Shanghai; the example program allows 1 marketing message a day
    message_id = ask()
    stubs["push"].fail_next(*[TransientDeliveryError("timed out")] * 4)
    at = NOW
    for _ in range(4):  # max_attempts = 4, all within the member's day
        send(engine, dispatcher, message_id, at=at)
        at = fetch_message(engine, message_id)["not_before"] or at
    assert fetch_message(engine, message_id)["status"] == "dead"

    replay(engine, now=at, message_id=message_id)
    outcome = send(engine, dispatcher, message_id, at=at)

    assert outcome == {message_id: "sent"}
    assert day_counts(engine) == {"d2026-11-05": 1}
    assert len(stubs["push"].sent) == 1


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        (Policy(business_timezone="Asia/Shanghai", per_day=1), "frequency_cap_day"),
        (Policy(business_timezone="Asia/Shanghai", per_week=1), "frequency_cap_week"),
    ],
)
def test_a_campaign_step_over_a_frequency_cap_is_skipped_with_the_reason(
    engine: Engine, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str], policy: Policy, reason: str,
) -> None:  # fmt: skip
    dispatcher.policy = policy
    add_member("m-1")
    first = ask(key="journey:j-1:s-1", campaign_id="welcome")
    capped = ask(key="journey:j-1:s-2", campaign_id="welcome")
    outside = ask(key="newsletter-1")  # marketing, but no campaign

    outcomes = [send(engine, dispatcher, message_id) for message_id in (first, capped, outside)]
    skipped, waiting = fetch_message(engine, capped), fetch_message(engine, outside)
    next_week = send(engine, dispatcher, capped, outside, at=NOW + timedelta(days=7))

    assert outcomes == [{first: "sent"}, {capped: "suppressed"}, {outside: "deferred"}]
    assert (skipped["reason"], skipped["not_before"], skipped["attempts"]) == (reason, None, 0)
    assert (waiting["status"], waiting["reason"]) == ("deferred", reason)
    assert next_week == {outside: "sent"}  # the skipped step never goes
    assert [m.message_id for m in stubs["push"].sent] == [first, outside]


def test_a_transactional_campaign_message_is_never_capped(
    engine: Engine, dispatcher: Dispatcher, add_member: Callable[..., str],
    ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-1")  # the example program allows 1 marketing message a day
    ids = [ask(key=f"k-{n}", kind="transactional", campaign_id="points") for n in range(3)]

    assert set(send(engine, dispatcher, *ids).values()) == {"sent"}


def ny_at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(ZoneInfo("America/New_York"))


@pytest.mark.parametrize(
    ("zone", "kind", "at", "expected"),
    [
        # 23:00 in New York: quiet until 08:30 there.
        ("America/New_York", "marketing", "2026-11-05T23:00-05:00",
         ("2026-11-06T08:30-05:00", "quiet_hours")),
        ("America/New_York", "transactional", "2026-11-05T23:00-05:00",
         ("2026-11-05T23:00-05:00", None)),
        # The same instant is 12:00 in Shanghai.
        ("Asia/Shanghai", "marketing", "2026-11-05T23:00-05:00",
         ("2026-11-05T23:00-05:00", None)),
        # Before 08:30 on the morning after New York's clocks fell back.
        ("America/New_York", "marketing", "2026-11-01T07:00-05:00",
         ("2026-11-01T08:30-05:00", "quiet_hours")),
        # No zone of their own: the program's (Asia/Shanghai), 23:00 there.
        (None, "marketing", "2026-11-05T23:00+08:00", ("2026-11-06T08:30+08:00", "quiet_hours")),
    ],
)  # fmt: skip
def test_the_planned_send_time_waits_out_the_members_quiet_hours(
    engine: Engine, program: Program, add_member: Callable[..., str],
    zone: str | None, kind: str, at: str, expected: tuple[str, str | None],
) -> None:  # fmt: skip
    add_member("m-1", timezone=zone)

    with engine.connect() as conn:
        planned = planned_send_time(
            conn, "m-1", kind=kind, at=datetime.fromisoformat(at), program=program
        )

    assert planned == (datetime.fromisoformat(expected[0]), expected[1])


def test_the_planned_send_time_is_when_the_message_is_then_sent(
    engine: Engine, dispatcher: Dispatcher, program: Program,
    add_member: Callable[..., str], ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-ny", timezone="America/New_York")
    message_id = ask("m-ny", campaign_id="welcome")

    with engine.connect() as conn:
        planned = planned_send_time(conn, "m-ny", kind="marketing", at=NOW,
                                    policy=dispatcher.policy)  # fmt: skip
    send(engine, dispatcher, message_id)
    sent = send(engine, dispatcher, message_id, at=planned[0])

    assert fetch_message(engine, message_id)["sent_at"] == planned[0]
    assert planned == (ny_at("2026-11-05T08:30-05:00"), "quiet_hours")
    assert sent == {message_id: "sent"}


def test_the_planned_send_time_without_quiet_hours_is_the_time_asked(
    engine: Engine, add_member: Callable[..., str]
) -> None:
    add_member("m-ny", timezone="America/New_York")

    with engine.connect() as conn:
        planned = planned_send_time(conn, "m-ny", kind="marketing", at=NOW, policy=Policy())

    assert planned == (NOW, None)


@pytest.mark.parametrize(
    ("member_id", "kind", "at", "error", "match"),
    [
        ("m-nobody", "marketing", NOW, LookupError, "no member by the id of 'm-nobody'"),
        ("m-1", "newsletter", NOW, ValueError, "kind must be marketing or transactional"),
        ("m-1", "marketing", NOW.replace(tzinfo=None), ValueError, "must be time-zone aware"),
    ],
)
def test_the_planned_send_time_refuses_what_it_cannot_answer(
    engine: Engine, program: Program, add_member: Callable[..., str],
    member_id: str, kind: str, at: datetime, error: type[Exception], match: str,
) -> None:  # fmt: skip
    add_member("m-1")

    with engine.connect() as conn, pytest.raises(error, match=match):
        planned_send_time(conn, member_id, kind=kind, at=at, program=program)


@pytest.mark.parametrize(
    ("channels", "consents", "expected"),
    [
        (["push", "sms", "email"], {"push": True, "sms": True, "email": True}, "push"),
        (["push", "sms", "email"], {"push": False, "sms": True, "email": True}, "sms"),
        (["email", "push"], {"push": True, "sms": True, "email": True}, "email"),
        (["sms", "push"], {"push": True, "sms": False, "email": True}, "push"),
        (["sms"], {"push": True, "sms": False, "email": True}, None),
        (["push", "email"], {"push": True, "sms": True, "email": True, "phone": None}, "push"),
    ],
)
def test_the_preview_chooses_the_channel_request_message_chooses(
    engine: Engine, program: Program, add_member: Callable[..., str],
    channels: list[str], consents: dict[str, bool | None], expected: str | None,
) -> None:  # fmt: skip
    add_member("m-1", locale="en", consents={k: v for k, v in consents.items() if k != "phone"})
    variables = sample_variables(program, "en")

    with engine.begin() as conn:
        previews = render_preview(conn, member_id="m-1", template_id="cart-coupon",
                                  variables=variables, now=NOW, program=program,
                                  channels=channels)  # fmt: skip
        chosen = choose_preview_channel(previews)
        requested = request_message(
            conn, member_id="m-1", channels=channels, template_id="cart-coupon",
            variables=variables, kind="marketing", dedupe_key="k", now=NOW, program=program,
        )  # fmt: skip

    assert [p.channel for p in previews] == channels
    assert (chosen.channel if chosen else None) == requested.channel == expected
    if chosen is None:
        assert requested.reason == previews[0].reason == "no_consent"


def test_the_preview_offers_only_the_channels_the_template_has(
    engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    add_member("m-1", locale="en", consents={"push": False, "sms": True, "email": True})

    with engine.connect() as conn:
        previews = render_preview(conn, member_id="m-1", template_id="welcome",
                                  variables=sample_variables(program, "en"), now=NOW,
                                  program=program, channels=["sms", "push", "email"])  # fmt: skip
        none_asked = render_preview(conn, member_id="m-1", template_id="welcome",
                                    variables=sample_variables(program, "en"), now=NOW,
                                    program=program, channels=[])  # fmt: skip

    chosen = choose_preview_channel(previews)
    assert [p.channel for p in previews] == ["push", "email"]  # welcome has no SMS text
    assert chosen is not None and chosen.channel == "email"
    assert none_asked == []
