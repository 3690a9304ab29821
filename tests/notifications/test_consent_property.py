"""A property: whatever the members and their consents, an opted-out member gets nothing on
that channel (consent never given, withdrawn by member.updated, or an unsubscribe link)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from notification_helpers import NOW, member_event
from sqlalchemy import Engine

from core.events.handlers import unit_of_work
from core.events.intake import Intake, ingest
from core.program.loader import Program
from notifications.dispatch import send_messages
from notifications.dispatcher import Dispatcher
from notifications.guardrails import CHANNELS
from notifications.records import apply_unsubscribe
from notifications.requests import MessageRequest, request_messages
from notifications.samples import sample_variables
from notifications.tokens import load_secret, make_token
from notifications.transports.stub import StubTransport

_run = itertools.count()
consent = st.sampled_from([True, False, None])
members = st.lists(
    st.fixed_dictionaries(
        {
            "consents": st.fixed_dictionaries({channel: consent for channel in CHANNELS}),
            "withdrawn": st.sets(st.sampled_from(CHANNELS)),  # member.updated after the request
            "unsubscribed": st.sets(st.sampled_from(CHANNELS)),  # via the link
            "zone": st.sampled_from(["Asia/Shanghai", "America/New_York", "Europe/London"]),
            "channels": st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True),
            "kind": st.sampled_from(["marketing", "transactional"]),
        }
    ),
    min_size=1,
    max_size=5,
)


def opted_out(member: dict[str, Any], channel: str) -> bool:
    return (
        member["consents"][channel] is not True
        or channel in member["withdrawn"]
        or channel in member["unsubscribed"]
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=members)
def test_an_opted_out_member_receives_nothing_on_that_channel(
    drawn: list[dict[str, Any]],
    engine: Engine,
    program: Program,
    dispatcher: Dispatcher,
    stubs: dict[str, StubTransport],
) -> None:
    run = next(_run)
    ids = {f"m-{run}-{n}": member for n, member in enumerate(drawn)}
    intake = Intake(engine=engine, now=NOW, source="test")
    ingest(
        [member_event(mid, consents=m["consents"], timezone=m["zone"]) for mid, m in ids.items()],
        intake,
    )
    requests = [
        MessageRequest(
            member_id=mid, channels=tuple(m["channels"]), template_id="cart-coupon",
            kind=m["kind"], dedupe_key=f"{mid}:cart", variables=sample_variables(program, "en"),
        )
        for mid, m in ids.items()
    ]  # fmt: skip
    with unit_of_work(engine, now=NOW, program=program) as ctx:
        message_ids = [r.message_id for r in request_messages(ctx, requests, now=NOW)]
    withdraw(engine, intake, ids)

    for hours in (0, 12, 24, 48, 24 * 8):  # past any quiet hours and full caps
        send_messages(engine, message_ids, now=NOW + timedelta(hours=hours), dispatcher=dispatcher)

    for channel, stub in stubs.items():
        receivers = {sent.member_id for sent in stub.sent}
        assert not any(opted_out(ids[mid], channel) for mid in receivers & ids.keys())
    for mid, member in ids.items():  # and the property is not vacuous: willing members get it
        first = member["channels"][0]
        if not any(opted_out(member, channel) for channel in CHANNELS):
            assert [s.member_id for s in stubs[first].sent].count(mid) == 1


def withdraw(engine: Engine, intake: Intake, ids: dict[str, dict[str, Any]]) -> None:
    updates = [
        member_event(
            mid, kind="member.updated", at="2026-11-04T12:00:00+08:00",
            consents={channel: False for channel in m["withdrawn"]},
        )
        for mid, m in ids.items()
        if m["withdrawn"]
    ]  # fmt: skip
    ingest(updates, intake)
    with engine.begin() as conn:
        secret = load_secret(conn, None)
        for mid, member in ids.items():
            for channel in member["unsubscribed"]:
                token = make_token(secret, member_id=mid, channel=channel)
                apply_unsubscribe(conn, token, now=NOW)
