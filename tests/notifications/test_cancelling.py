"""Cancelling: a message no provider has yet is withdrawn from every send path; the states
campaigns read back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from notification_helpers import NOW, fetch_message, statuses
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from core.broker import drain
from core.clock import FixedClock, set_clock
from core.events.handlers import unit_of_work
from core.program.loader import Program
from core.runtime import Runtime
from core.scheduling import fire_times
from core.ticking import tick
from notifications import dispatch as dispatch_module
from notifications.dispatch import send_messages
from notifications.dispatcher import Dispatcher
from notifications.errors import ReplayRefused
from notifications.jobs import DueMessagesTrigger, notification_jobs
from notifications.records import fetch_log, replay
from notifications.release import due_message_ids
from notifications.requests import (
    MessageState,
    cancel_messages,
    fetch_message_states,
    request_message,
)
from notifications.samples import sample_variables
from notifications.tables import messages
from notifications.transports.stub import StubTransport

MORNING_IN_NEW_YORK = NOW.replace(hour=13, minute=30)  # quiet hours end at 08:30 EST


@pytest.fixture
def ask(engine: Engine, program: Program) -> Callable[..., str]:
    """Request a marketing push message for a campaign; returns its id."""

    def request(member_id: str = "m-1", *, key: str = "k-1", **overrides: Any) -> str:
        values: dict[str, Any] = {
            "member_id": member_id,
            "channels": ["push"],
            "template_id": "welcome",
            "variables": sample_variables(program, "en"),
            "kind": "marketing",
            "dedupe_key": key,
            "campaign_id": "welcome",
        } | overrides
        with unit_of_work(engine, now=NOW, program=program) as ctx:
            return request_message(ctx, now=NOW, **values).message_id  # type: ignore[no-any-return]

    return request


def cancel(engine: Engine, ids: list[str], reason: str = "journey_exited") -> list[str]:
    with engine.begin() as conn:
        return cancel_messages(conn, ids, reason=reason, now=NOW)


def set_status(engine: Engine, message_id: str, status: str, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(messages)
            .where(messages.c.message_id == message_id)
            .values(status=status, **values)
        )


def test_a_message_deferred_by_quiet_hours_then_cancelled_is_never_sent_when_they_end(
    runtime: Runtime, engine: Engine, add_member: Callable[..., str], ask: Callable[..., str]
) -> None:
    set_clock(FixedClock(NOW))  # 23:00 in New York
    add_member("m-ny", timezone="America/New_York", locale="en")
    add_member("m-stays", timezone="America/New_York", locale="en")
    exited, stays = ask("m-ny", key="journey:j-1:s-1"), ask("m-stays", key="journey:j-2:s-1")
    drain()
    assert statuses(engine) == {exited: "deferred", stays: "deferred"}

    cancelled = cancel(engine, [exited])
    report = tick(runtime, notification_jobs(runtime), start=NOW, until=NOW + timedelta(hours=12))

    assert cancelled == [exited]
    assert (MORNING_IN_NEW_YORK, "notifications.release") in report.fired
    row = fetch_message(engine, exited)
    assert (row["status"], row["reason"], row["sent_at"]) == ("cancelled", "journey_exited", None)
    assert fetch_message(engine, stays)["status"] == "sent"
    lines = runtime.settings.outbox.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["message_id"] for line in lines] == [stays]


def test_a_cancelled_message_wakes_no_release_job(
    runtime: Runtime, engine: Engine, add_member: Callable[..., str], ask: Callable[..., str]
) -> None:
    set_clock(FixedClock(NOW))
    add_member("m-ny", timezone="America/New_York")
    cancel(engine, [ask("m-ny")])
    drain()

    times = list(fire_times(DueMessagesTrigger(runtime), NOW, NOW + timedelta(days=1)))

    assert times == [NOW.replace(hour=0) + timedelta(days=1)]  # only the daily poll


def test_only_messages_no_provider_has_yet_are_cancelled(
    engine: Engine, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-1")
    later = NOW + timedelta(days=1)
    states = ["queued", "deferred", "retrying", "sending", "sent", "suppressed", "failed",
              "dead", "unknown"]  # fmt: skip
    ids = {status: ask(key=f"k-{status}") for status in states}
    for status, message_id in ids.items():
        set_status(engine, message_id, status, not_before=NOW, sending_since=NOW)

    cancelled = cancel(engine, [*reversed(ids.values()), "msg_never_recorded", ids["queued"]])

    assert cancelled == [ids["retrying"], ids["deferred"], ids["queued"]]
    after = statuses(engine)
    assert {status: after[message_id] for status, message_id in ids.items()} == {
        status: "cancelled" if status in ("queued", "deferred", "retrying") else status
        for status in states
    }
    assert send_messages(engine, cancelled, now=later, dispatcher=dispatcher).outcomes == {}
    assert stubs["push"].sent == []
    assert set(due_message_ids(engine, now=later, lease_s=60)).isdisjoint(cancelled)


def test_a_cancelled_message_cannot_be_replayed(
    engine: Engine, ask: Callable[..., str], add_member: Callable[..., str]
) -> None:
    add_member("m-1")
    message_id = ask()
    cancel(engine, [message_id])

    with pytest.raises(ReplayRefused, match="is cancelled; only dead, failed or unknown"):
        replay(engine, now=NOW, message_id=message_id)


@pytest.mark.parametrize("reason", ["", "   ", "x" * 65])
def test_a_cancel_needs_a_reason_that_fits(engine: Engine, reason: str) -> None:
    with pytest.raises(ValueError, match="reason must be a non-empty text"):
        cancel(engine, ["msg_a"], reason=reason)


@pytest.mark.parametrize("local", [True, False], ids=["local", "remote"])
def test_a_cancel_waits_for_a_batch_being_sent_and_leaves_the_sent_message_alone(
    engine: Engine, dispatcher: Dispatcher, stubs: dict[str, StubTransport],
    add_member: Callable[..., str], ask: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch, local: bool,
) -> None:  # fmt: skip
    add_member("m-1")
    message_id = ask(kind="transactional")  # counts against no cap: nothing written before
    stubs["push"].local = local
    outcome: list[list[str]] = []
    racer = threading.Thread(target=lambda: outcome.append(cancel(engine, [message_id])))
    blocked: list[bool] = []
    original = dispatch_module.unsubscribe_secret

    def cancel_meanwhile(*args: Any) -> Any:  # inside the batch's transaction, rows locked
        racer.start()
        time.sleep(0.5)
        blocked.append(racer.is_alive())
        return original(*args)

    monkeypatch.setattr(dispatch_module, "unsubscribe_secret", cancel_meanwhile)
    report = send_messages(engine, [message_id], now=NOW, dispatcher=dispatcher)
    racer.join(timeout=30)

    assert blocked == [True]  # the cancel waited for the batch's lock
    assert report.outcomes == {message_id: "sent"}
    assert outcome == [[]]
    assert fetch_message(engine, message_id)["status"] == "sent"
    assert len(stubs["push"].sent) == 1


def test_the_states_say_where_each_message_stands(
    engine: Engine, dispatcher: Dispatcher, add_member: Callable[..., str],
    ask: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-1")
    add_member("m-ny", timezone="America/New_York")
    add_member("m-off", consents={"push": False, "email": False, "sms": False})
    sent, deferred = ask("m-1", key="k-1"), ask("m-ny", key="k-2")
    refused, cancelled = ask("m-off", key="k-3"), ask("m-1", key="k-4", campaign_id=None)
    send_messages(engine, [sent, deferred], now=NOW, dispatcher=dispatcher)
    cancel(engine, [cancelled])

    with engine.connect() as conn:
        states = fetch_message_states(conn, [sent, deferred, refused, cancelled, "msg_nope"])
        empty = fetch_message_states(conn, [])

    assert states == {
        sent: MessageState(sent, "sent", None, "push", None, NOW, "welcome", "welcome"),
        deferred: MessageState(deferred, "deferred", "quiet_hours", "push",
                               MORNING_IN_NEW_YORK, None, "welcome", "welcome"),
        refused: MessageState(refused, "suppressed", "no_consent", None, NOW, None, "welcome",
                              "welcome"),
        cancelled: MessageState(cancelled, "cancelled", "journey_exited", "push", None, None,
                                "welcome", None),
    }  # fmt: skip
    assert empty == {}


def test_the_log_shows_a_cancelled_message_and_why(
    engine: Engine, ask: Callable[..., str], add_member: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch, db_url: str, program: Program, tmp_path: Any,
) -> None:  # fmt: skip
    from core.cli import app

    add_member("m-1")
    message_id = ask()
    cancel(engine, [message_id])
    monkeypatch.setenv("LOYALTY_DATABASE_URL", db_url)
    monkeypatch.delenv("LOYALTY_REDIS_URL", raising=False)
    monkeypatch.setenv("LOYALTY_PROGRAM_DIR", str(program.directory))
    monkeypatch.chdir(tmp_path)

    as_json = CliRunner().invoke(app, ["notifications", "log", "--json"])
    from core.cli import output

    monkeypatch.setattr(output.console, "width", 200)  # the table in full, whatever the terminal
    as_table = CliRunner().invoke(app, ["notifications", "log"])

    assert as_json.exit_code == 0, as_json.output
    [entry] = json.loads(as_json.stdout)
    assert (entry["status"], entry["reason"]) == ("cancelled", "journey_exited")
    assert "cancelled" in as_table.stdout and "journey_exited" in as_table.stdout
    with engine.connect() as conn:
        assert [e.status for e in fetch_log(conn, member_id="m-1")] == ["cancelled"]
