"""Deferred and stranded messages come back when due, in real time and under `tick`."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import datetime, timedelta

from notification_helpers import NOW, fetch_message
from rich.console import Console
from sqlalchemy import Engine, update

from core.broker import drain
from core.clock import FixedClock, set_clock
from core.events.handlers import unit_of_work
from core.program.loader import Program
from core.runtime import Runtime
from core.scheduling import fire_times
from core.ticking import tick
from notifications.jobs import DueMessagesTrigger, notification_jobs
from notifications.requests import Kind, request_message
from notifications.samples import sample_variables
from notifications.summaries import print_delivery_summary
from notifications.tables import messages

MORNING_IN_NEW_YORK = datetime.fromisoformat("2026-11-05T08:30:00-05:00")  # quiet until 08:30


def ask(
    engine: Engine, program: Program, member_id: str, key: str, kind: Kind = "marketing"
) -> str:
    with unit_of_work(engine, now=NOW, program=program) as ctx:
        message_id: str = request_message(
            ctx, member_id=member_id, channels=["push"], template_id="welcome",
            variables=sample_variables(program, "en"), kind=kind, dedupe_key=key, now=NOW,
        ).message_id  # fmt: skip
    return message_id


def test_tick_sends_a_message_deferred_by_quiet_hours_at_the_members_morning(
    runtime: Runtime, engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    set_clock(FixedClock(NOW))  # 23:00 in New York
    add_member("m-ny", timezone="America/New_York", locale="en")
    message_id = ask(engine, program, "m-ny", "k-1")
    drain()
    assert fetch_message(engine, message_id)["status"] == "deferred"

    report = tick(runtime, notification_jobs(runtime), start=NOW, until=NOW + timedelta(hours=12))

    assert (MORNING_IN_NEW_YORK, "notifications.release") in report.fired
    row = fetch_message(engine, message_id)
    assert (row["status"], row["sent_at"]) == ("sent", MORNING_IN_NEW_YORK)
    [line] = runtime.settings.outbox.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["sent_at"] == "2026-11-05T13:30:00+00:00"


def test_the_release_trigger_fires_when_a_message_is_due_and_at_least_daily(
    runtime: Runtime, engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    set_clock(FixedClock(NOW))
    add_member("m-ny", timezone="America/New_York")
    ask(engine, program, "m-ny", "k-1")
    drain()

    times = list(fire_times(DueMessagesTrigger(runtime), NOW, NOW + timedelta(days=2)))

    assert times == [
        MORNING_IN_NEW_YORK,
        datetime.fromisoformat("2026-11-06T00:00:00+00:00"),
        datetime.fromisoformat("2026-11-07T00:00:00+00:00"),
    ]


def test_the_release_job_finds_messages_whose_actor_message_or_worker_was_lost(
    runtime: Runtime, engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    set_clock(FixedClock(NOW))
    add_member("m-1")
    forgotten = ask(engine, program, "m-1", "k-1", kind="transactional")  # never drained
    stuck = ask(engine, program, "m-1", "k-2", kind="transactional")
    with engine.begin() as conn:
        conn.execute(
            update(messages).where(messages.c.message_id == stuck)
            .values(status="sending", attempts=1, sending_since=NOW)
        )  # fmt: skip
    later = NOW + timedelta(minutes=10)
    set_clock(FixedClock(later))

    tick(runtime, notification_jobs(runtime), start=later, until=later + timedelta(days=1))

    assert fetch_message(engine, forgotten)["status"] == "sent"
    assert fetch_message(engine, stuck)["status"] == "sent"  # the outbox is idempotent
    ids = [
        json.loads(line)["message_id"] for line in runtime.settings.outbox.read_text().splitlines()
    ]
    assert sorted(ids) == sorted([forgotten, stuck])


def test_the_demo_summary_counts_messages_by_status_and_channel(
    runtime: Runtime, engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    output = io.StringIO()
    print_delivery_summary(runtime, Console(file=output, width=120))
    assert output.getvalue().strip() == "messages none yet"

    set_clock(FixedClock(NOW))
    add_member("m-1")
    add_member("m-ny", timezone="America/New_York")
    add_member("m-off", consents={"push": False, "email": False})
    for member_id in ("m-1", "m-ny", "m-off"):
        ask(engine, program, member_id, f"k-{member_id}")
    drain()
    output = io.StringIO()
    print_delivery_summary(runtime, Console(file=output, width=120))

    assert (
        output.getvalue().strip()
        == "messages deferred 1 (push 1), sent 1 (push 1), suppressed 1 (no channel 1)"
    )


def test_with_redis_and_the_wall_clock_a_deferral_travels_as_a_delayed_batch(
    redis_url: str,
) -> None:
    import redis as redis_client

    import worker
    from core.clock import SystemClock
    from core.settings import Settings
    from notifications.actors import schedule_later

    worker.setup(Settings(_env_file=None, redis_url=redis_url))  # type: ignore[call-arg]
    set_clock(SystemClock())
    try:
        morning = NOW + timedelta(hours=5)
        schedule_later({"msg_a": morning, "msg_b": morning, "msg_c": NOW}, now=NOW)
    finally:
        worker.setup(Settings(_env_file=None, redis_url=None))  # type: ignore[call-arg]

    client = redis_client.Redis.from_url(redis_url)
    delayed = [json.loads(m) for m in client.hvals("dramatiq:notifications.DQ.msgs")]
    batches = sorted((m["args"][0], m["options"].get("eta")) for m in delayed)
    assert [ids for ids, _ in batches] == [["msg_a", "msg_b"], ["msg_c"]]
    assert all(eta is not None for _, eta in batches)
