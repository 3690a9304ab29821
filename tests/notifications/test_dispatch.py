"""Sending: the state machine, retries, dead letters, guardrails at send time, once only."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from notification_helpers import NOW, fetch_message, member_event, statuses
from sqlalchemy import Engine, func, select, update

from core.broker import drain
from core.clock import FixedClock, set_clock
from core.events.handlers import HandlerRegistry, unit_of_work
from core.events.intake import Intake, ingest
from core.program.loader import Program
from core.runtime import Runtime
from notifications import dispatch as dispatch_module
from notifications.actors import send_message
from notifications.dispatch import send_messages
from notifications.dispatcher import Dispatcher
from notifications.errors import PermanentDeliveryError, TransientDeliveryError
from notifications.records import apply_unsubscribe, replay
from notifications.requests import request_message
from notifications.samples import sample_variables
from notifications.tables import attempts, messages, suppressions
from notifications.tokens import load_secret, make_token
from notifications.transports.outbox import OutboxTransport
from notifications.transports.stub import StubTransport


@pytest.fixture
def ask(engine: Engine, program: Program) -> Callable[..., str]:
    """Request a message; returns its id."""

    def request(member_id: str = "m-1", *, key: str = "k-1", at: datetime = NOW,
                **overrides: Any) -> str:  # fmt: skip
        values: dict[str, Any] = {
            "member_id": member_id,
            "channels": ["push"],
            "template_id": "welcome",
            "variables": sample_variables(program, "zh-CN"),
            "kind": "marketing",
            "dedupe_key": key,
        } | overrides
        with unit_of_work(engine, now=at, program=program) as ctx:
            return request_message(ctx, now=at, **values).message_id  # type: ignore[no-any-return]

    return request


def send(engine: Engine, dispatcher: Dispatcher, *ids: str, at: datetime = NOW) -> dict[str, str]:
    return send_messages(engine, ids, now=at, dispatcher=dispatcher).outcomes


def test_a_queued_message_is_sent_and_recorded_with_the_providers_id(
    engine: Engine, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-1")
    message_id = ask()

    assert send(engine, dispatcher, message_id) == {message_id: "sent"}

    row = fetch_message(engine, message_id)
    assert (row["status"], row["attempts"], row["provider"]) == ("sent", 1, "stub-push")
    assert row["provider_message_id"] == f"stub-push-{message_id}"
    assert row["to_masked"] == "…abcdef"
    assert [m.to for m in stubs["push"].sent] == ["push-m-1-abcdef"]
    assert stubs["push"].sent[0].title == "欢迎来到茶舍"


def test_a_transient_error_is_retried_with_backoff_and_then_delivered_once(
    engine: Engine, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-1")
    message_id = ask()
    stubs["push"].fail_next(TransientDeliveryError("HTTP 503: busy", provider="stub-push"))

    first = send(engine, dispatcher, message_id)
    retry_at = fetch_message(engine, message_id)["not_before"]
    too_early = send(engine, dispatcher, message_id, at=retry_at - timedelta(seconds=1))
    second = send(engine, dispatcher, message_id, at=retry_at)

    assert (first, too_early, second) == ({message_id: "retrying"}, {}, {message_id: "sent"})
    assert timedelta(seconds=15) <= retry_at - NOW <= timedelta(seconds=30)  # 30 s, jittered
    assert len(stubs["push"].sent) == 1
    with engine.connect() as conn:
        outcomes = conn.execute(select(attempts.c.outcome).order_by(attempts.c.attempt)).scalars()
        assert list(outcomes) == ["transient", "sent"]


def test_after_the_last_attempt_a_message_is_dead_lettered_and_replay_sends_it(
    engine: Engine, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-1")
    # Transactional, caps aside (a replayed marketing message is not counted again either:
    # see test_campaign_guardrails).
    message_id = ask(kind="transactional")
    stubs["push"].fail_next(*[TransientDeliveryError("timed out")] * 4)
    at = NOW
    for _ in range(4):  # max_attempts = 4
        send(engine, dispatcher, message_id, at=at)
        at = fetch_message(engine, message_id)["not_before"] or at

    dead = fetch_message(engine, message_id)
    replayed = replay(engine, now=at, all_dead=True)
    outcome = send(engine, dispatcher, message_id, at=at)

    assert (dead["status"], dead["reason"], dead["attempts"]) == ("dead", "retries_exhausted", 4)
    assert replayed == [message_id]
    assert outcome == {message_id: "sent"}
    assert len(stubs["push"].sent) == 1


def test_the_backoff_grows_exponentially_with_jitter_and_is_capped(dispatcher: Dispatcher) -> None:
    delays = [dispatcher.backoff(attempt).total_seconds() for attempt in range(1, 10)]

    for attempt, delay in enumerate(delays, start=1):
        base = min(3600, 30 * 2 ** (attempt - 1))
        assert base / 2 <= delay <= base
    assert dispatcher.backoff(1, retry_after=120).total_seconds() == 120


def test_a_permanent_error_is_not_retried_and_suppresses_the_address(
    engine: Engine, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-1")
    first = ask(key="k-1")
    stubs["push"].fail_next(PermanentDeliveryError("HTTP 400: bad token", suppress=True))

    send(engine, dispatcher, first)
    second = ask(key="k-2", kind="transactional")
    later = send(engine, dispatcher, second)

    row = fetch_message(engine, first)
    assert (row["status"], row["reason"], row["attempts"]) == ("failed", "invalid_address", 1)
    assert row["error"] == "HTTP 400: bad token"
    assert later == {second: "suppressed"}
    assert fetch_message(engine, second)["reason"] == "suppressed_address"
    assert stubs["push"].sent == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(suppressions)).scalar() == 1


def test_marketing_at_night_is_deferred_to_the_members_morning_then_sent(
    engine: Engine, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-ny", timezone="America/New_York")  # NOW is 23:00 in New York
    marketing = ask("m-ny", key="k-1")
    transactional = ask("m-ny", key="k-2", kind="transactional")

    night = send(engine, dispatcher, marketing, transactional)
    morning = datetime.fromisoformat("2026-11-05T08:30:00-05:00")  # quiet until 08:30
    row = fetch_message(engine, marketing)
    on_time = send(engine, dispatcher, marketing, at=morning)

    assert night == {marketing: "deferred", transactional: "sent"}
    assert (row["reason"], row["not_before"], row["attempts"]) == ("quiet_hours", morning, 0)
    assert on_time == {marketing: "sent"}


def test_the_daily_cap_defers_the_second_marketing_message_to_the_next_morning(
    engine: Engine, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-1")  # Shanghai; the program caps marketing at 1 a day, 4 a week
    ids = [ask(key=f"k-{n}") for n in range(2)]
    receipt = ask(key="k-receipt", kind="transactional")

    outcomes = send(engine, dispatcher, *ids, receipt)

    deferred = [mid for mid, status in outcomes.items() if status == "deferred"]
    assert sorted(outcomes.values()) == ["deferred", "sent", "sent"]
    row = fetch_message(engine, deferred[0])
    assert row["reason"] == "frequency_cap_day"
    assert row["not_before"] == datetime.fromisoformat("2026-11-06T08:30:00+08:00")
    assert row["attempts"] == 0
    assert send(engine, dispatcher, deferred[0], at=row["not_before"]) == {deferred[0]: "sent"}


def test_consent_withdrawn_after_the_request_stops_the_send(
    engine: Engine, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-1")
    message_id = ask()
    add_member("m-1", kind="member.updated", at="2026-11-04T10:00:00+08:00",
               consents={"push": False})  # fmt: skip

    assert send(engine, dispatcher, message_id) == {message_id: "suppressed"}
    assert fetch_message(engine, message_id)["reason"] == "no_consent"
    assert stubs["push"].sent == []


def test_an_unsubscribe_link_stops_the_channel_and_newer_consent_lifts_it(
    engine: Engine, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-1")
    first = ask(key="k-1")
    with engine.begin() as conn:
        token = make_token(load_secret(conn, None), member_id="m-1", channel="push")
        apply_unsubscribe(conn, token, now=NOW)

    stopped = send(engine, dispatcher, first)
    add_member("m-1", kind="member.updated", at="2026-11-06T10:00:00+08:00",
               consents={"push": True})  # fmt: skip
    second = ask(key="k-2", at=NOW + timedelta(days=2))

    assert stopped == {first: "suppressed"}
    assert fetch_message(engine, first)["reason"] == "unsubscribed"
    assert send(engine, dispatcher, second, at=NOW + timedelta(days=2)) == {second: "sent"}


def leave_sending(engine: Engine, message_id: str, since: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(messages)
            .where(messages.c.message_id == message_id)
            .values(status="sending", attempts=1, sending_since=since)
        )


def test_a_send_interrupted_by_a_dead_worker_is_resent_where_the_provider_is_idempotent(
    engine: Engine, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-1")
    message_id = ask()
    leave_sending(engine, message_id, since=NOW)

    within_lease = send(engine, dispatcher, message_id, at=NOW + timedelta(seconds=60))
    after_lease = send(engine, dispatcher, message_id, at=NOW + timedelta(minutes=6))

    assert within_lease == {}  # another worker may still be on it
    assert after_lease == {message_id: "sent"}
    assert fetch_message(engine, message_id)["attempts"] == 2


def test_a_send_interrupted_where_the_provider_has_no_idempotency_key_is_marked_unknown(
    engine: Engine, dispatcher: Dispatcher, add_member: Callable[..., str],
    ask: Callable[..., str],
) -> None:  # fmt: skip
    smtp_like = StubTransport("email", name="smtp", idempotent=False)
    dispatcher.transports = {**dispatcher.transports, "email": smtp_like}
    add_member("m-1")
    message_id = ask(channels=["email"])
    leave_sending(engine, message_id, since=NOW)

    outcome = send(engine, dispatcher, message_id, at=NOW + timedelta(minutes=6))

    row = fetch_message(engine, message_id)
    assert outcome == {message_id: "unknown"}
    assert (row["status"], row["reason"], row["provider"]) == ("unknown", "interrupted", "smtp")
    assert "may or may not have been delivered" in row["error"]
    assert smtp_like.sent == []


def test_enqueuing_the_same_send_100_times_sends_one_message(
    engine: Engine, runtime: Runtime, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str],
) -> None:  # fmt: skip
    set_clock(FixedClock(NOW))
    add_member("m-1")
    message_id = ask()
    drain()  # the send request_message enqueued
    for _ in range(100):
        send_message.send(message_id)

    drain()

    assert len(stubs["push"].sent) == 1
    assert fetch_message(engine, message_id)["attempts"] == 1


def test_two_workers_racing_over_the_same_batch_send_each_message_once(
    pg_engine: Engine, program: Program, dispatcher: Dispatcher,
    stubs: dict[str, StubTransport],
) -> None:  # fmt: skip
    at = NOW
    events = [member_event(f"m-{n}") for n in range(20)]
    ingest(events, Intake(engine=pg_engine, now=at, source="test", registry=HandlerRegistry()))
    ids = []
    for n in range(20):
        with unit_of_work(pg_engine, now=at, program=program) as ctx:
            ids.append(request_message(
                ctx, member_id=f"m-{n}", channels=["push"], template_id="welcome",
                variables=sample_variables(program, "en"), kind="transactional",
                dedupe_key=f"race-{n}", now=at,
            ).message_id)  # fmt: skip
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        send_messages(pg_engine, ids, now=at, dispatcher=dispatcher)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(m.message_id for m in stubs["push"].sent) == sorted(ids)
    assert set(statuses(pg_engine).values()) == {"sent"}


def test_the_outbox_is_written_inside_the_recording_transaction_and_a_lost_record_resends_once(
    engine: Engine, dispatcher: Dispatcher, add_member: Callable[..., str],
    ask: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    outbox = OutboxTransport(tmp_path / "outbox.jsonl", channel="push")
    dispatcher.transports = {**dispatcher.transports, "push": outbox}
    add_member("m-1")
    message_id = ask()

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("worker died before the commit")

    with monkeypatch.context() as patched:
        patched.setattr(dispatch_module, "record_outcomes", crash)
        with pytest.raises(RuntimeError):
            send(engine, dispatcher, message_id)
    after_crash = fetch_message(engine, message_id)
    outcome = send(engine, dispatcher, message_id)

    assert (after_crash["status"], after_crash["attempts"]) == ("queued", 0)
    assert outcome == {message_id: "sent"}
    assert len((tmp_path / "outbox.jsonl").read_text().splitlines()) == 1
