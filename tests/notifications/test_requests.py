"""request_message records each message once, on the first channel the member can receive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from notification_helpers import NOW, fetch_message
from sqlalchemy import Engine, func, select

from core.broker import get_broker
from core.events.handlers import unit_of_work
from core.program.loader import Program
from core.runtime import Runtime
from notifications.preview import render_preview
from notifications.records import apply_unsubscribe
from notifications.requests import MessageRequest, request_message, request_messages
from notifications.samples import sample_variables
from notifications.tables import messages
from notifications.tokens import load_secret, make_token


def ask(
    engine: Engine, program: Program, member_id: str, *, key: str = "k-1", **overrides: Any
) -> Any:
    values: dict[str, Any] = {
        "member_id": member_id,
        "channels": ["push", "email"],
        "template_id": "welcome",
        "variables": sample_variables(program, "en"),
        "kind": "marketing",
        "dedupe_key": key,
        "campaign_id": "welcome-onboarding",
    } | overrides
    with unit_of_work(engine, now=NOW, program=program) as ctx:
        return request_message(ctx, now=NOW, **values)


def test_the_message_is_recorded_queued_on_the_first_receivable_channel(
    engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    add_member("m-1", push_token=None, locale="en")

    result = ask(engine, program, "m-1")

    assert (result.status, result.channel, result.created) == ("queued", "email", True)
    row = fetch_message(engine, result.message_id)
    assert row["to_masked"] == "m***@example.com"
    assert (
        row["subject"] == "Welcome to the tea house, Alexandra"
    )  # the member's locale; caller's variables
    assert "Unsubscribe: http://127.0.0.1:8000/unsubscribe/u1." in row["body"]


def test_the_projections_first_name_fills_in_what_the_caller_left_out(
    engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    add_member("m-1", first_name="Lin", locale="zh-CN")
    variables = sample_variables(program, "zh-CN")
    del variables["member"]["first_name"]

    result = ask(engine, program, "m-1", channels=["email"], variables=variables)

    assert fetch_message(engine, result.message_id)["subject"] == "欢迎来到茶舍，Lin"


@pytest.mark.parametrize(
    ("profile", "reason"),
    [
        ({"consents": {"email": False, "push": False}}, "no_consent"),
        ({"email": None, "push_token": None}, "no_address"),
    ],
)
def test_a_member_who_can_receive_none_of_the_channels_is_suppressed_with_the_reason(
    engine: Engine,
    program: Program,
    add_member: Callable[..., str],
    profile: dict[str, Any],
    reason: str,
) -> None:
    add_member("m-1", **profile)

    result = ask(engine, program, "m-1")

    assert (result.status, result.channel, result.reason) == ("suppressed", None, reason)


def test_an_unknown_member_is_suppressed(engine: Engine, program: Program) -> None:
    result = ask(engine, program, "m-nobody")

    assert (result.status, result.reason) == ("suppressed", "unknown_member")


def test_a_variable_the_caller_forgot_fails_the_message_not_the_transaction(
    engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    add_member("m-1")
    variables = sample_variables(program, "zh-CN")
    del variables["coupon"]

    result = ask(engine, program, "m-1", variables=variables)

    assert (result.status, result.reason) == ("failed", "render_error")
    assert "'coupon' is undefined" in fetch_message(engine, result.message_id)["error"]


def test_asking_100_times_with_one_dedupe_key_records_one_message(
    engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    add_member("m-1")

    results = [ask(engine, program, "m-1", key="welcome:m-1:step-0") for _ in range(100)]

    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 1
    assert [r.created for r in results] == [True] + [False] * 99
    assert len({r.message_id for r in results}) == 1


def test_a_batch_records_each_dedupe_key_once_and_enqueues_after_commit(
    engine: Engine, program: Program, add_member: Callable[..., str], runtime: Runtime
) -> None:
    for n in range(3):
        add_member(f"m-{n}")
    requests = [
        MessageRequest(
            member_id=f"m-{n % 3}",
            channels=("push",),
            template_id="welcome",
            kind="transactional",
            dedupe_key=f"k-{n % 3}",
            variables=sample_variables(program, "zh-CN"),
        )
        for n in range(6)
    ]
    broker: Any = get_broker()

    with unit_of_work(engine, now=NOW, program=program) as ctx:
        results = request_messages(ctx, requests, now=NOW)
        assert broker.queues["notifications"].qsize() == 0  # nothing before the commit

    assert [r.created for r in results] == [True, True, True, False, False, False]
    assert broker.queues["notifications"].qsize() == 1  # one batch actor message


def test_with_a_bare_connection_the_message_waits_for_the_release_job(
    engine: Engine, program: Program, add_member: Callable[..., str], runtime: Runtime
) -> None:
    add_member("m-1")
    broker: Any = get_broker()

    with engine.begin() as conn:
        result = request_message(
            conn, member_id="m-1", channels=["push"], template_id="welcome",
            variables=sample_variables(program, "zh-CN"), kind="marketing", dedupe_key="k",
            now=NOW, program=program,
        )  # fmt: skip

    assert result.status == "queued"
    assert broker.queues["notifications"].qsize() == 0


def test_a_preview_renders_every_channel_for_the_member_and_says_which_they_can_receive(
    engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    add_member("m-1", locale="en", phone=None, consents={"email": True, "push": False})

    with engine.connect() as conn:
        previews = render_preview(
            conn, member_id="m-1", template_id="cart-coupon",
            variables=sample_variables(program, "en"), now=NOW, program=program,
        )  # fmt: skip

    by_channel = {preview.channel: preview for preview in previews}
    assert [p.channel for p in previews] == ["push", "sms", "email"]
    assert (by_channel["push"].receivable, by_channel["push"].reason) == (False, "no_consent")
    assert (by_channel["sms"].receivable, by_channel["sms"].reason) == (False, "no_consent")
    email = by_channel["email"]
    assert (email.receivable, email.to) == (True, "m***@example.com")
    assert email.message is not None
    assert email.message.subject == "Alexandra, we kept your tea for you"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 0


def test_an_older_consent_arriving_late_does_not_lift_a_newer_unsubscribe(
    engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    add_member("m-1")
    with engine.begin() as conn:
        token = make_token(load_secret(conn, None), member_id="m-1", channel="push")
        apply_unsubscribe(conn, token, now=NOW)

    add_member("m-1", kind="member.updated", at="2026-11-01T12:00:00+08:00",
               consents={"push": True})  # fmt: skip

    result = ask(engine, program, "m-1", channels=["push"])
    assert (result.status, result.reason) == ("suppressed", "unsubscribed")
