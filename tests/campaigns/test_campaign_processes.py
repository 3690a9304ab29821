"""The campaign engine under real processes: `loyalty-engine scheduler` and `worker` on
PostgreSQL and Redis enrol and message each member once, survive a worker killed mid-journey,
and carry journeys in flight across an edit of the campaign file (process_helpers explains the
processes, the Redis database and the redelivery of a dead worker's messages)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from process_helpers import (
    Engines,
    Recovery,
    Settled,
    cart_updated,
    dead_lettered,
    engine_processes,
    fetch_journey_coupons,
    fetch_journeys,
    fetch_messages,
    fetch_steps,
    ingest_now,
    member_registered,
    own_redis_database,
    unfinished_messages,
    write_campaigns,
    write_program,
)
from sqlalchemy import Engine, select

from campaigns.assignment import version_of
from campaigns.journeys import Candidate, enrol
from campaigns.steps import advance_journeys
from core.events.handlers import HandlerRegistry, unit_of_work
from core.events.intake import Intake, ingest
from core.program.loader import Program, load_program
from core.state import job_firings


def campaign(campaign_id: str, trigger: str, *steps: str) -> str:
    lines = "".join(f"  - {step}\n" for step in steps)
    return (f"id: {campaign_id}\nname: {campaign_id}\nkind: transactional\n"
            f"trigger: {trigger}\nsteps:\n{lines}")  # fmt: skip


COUPON = "issue_coupon: first-brew-15"
WELCOME = "send: {channel: email, template: welcome}"
REMINDER = "send: {channel: push, template: welcome-reminder}"
REGISTERED = "{event: member.registered}"
ONBOARDING = campaign("onboarding", REGISTERED, COUPON, WELCOME, "wait: 4s", REMINDER)
CART_REMINDER = "send: {channel: push, template: cart-reminder}"
CART = campaign("cart-nudge", "{cart_abandoned: {idle_for: 3s}}", CART_REMINDER)
CRASH_COURSE = campaign("crash-course", REGISTERED, COUPON, WELCOME, "wait: 3s", REMINDER)
# Before and after an edit: the series keeps the step its journeys wait at (`id: reminder`),
# gains a step before it and loses the last; the follow-up loses the step its journeys wait at.
SERIES = ("welcome-series", REGISTERED, COUPON, WELCOME, "wait: 10s")
SERIES_BEFORE = campaign(*SERIES, f"{{id: reminder, {REMINDER}}}",
                         "send: {channel: sms, template: welcome-last-chance}")  # fmt: skip
SERIES_AFTER = campaign(*SERIES, "award_points: {points: 50, reason: welcome-bonus}",
                        f"{{id: reminder, {REMINDER}}}")  # fmt: skip
FOLLOW_UP = ("cart-follow-up", "{event: cart.updated}", "issue_coupon: cart-steep-12", "wait: 10s")
FOLLOW_UP_BEFORE = campaign(*FOLLOW_UP, "send: {channel: push, template: cart-coupon}")
FOLLOW_UP_AFTER = campaign(*FOLLOW_UP, "send: {channel: push, template: cart-reminder}")


@pytest.fixture
def engines(pg_engine: Engine, pg_url: str, tmp_path: Path) -> Iterator[Engines]:
    with own_redis_database() as redis_url, engine_processes(pg_url, redis_url, tmp_path) as e:
        yield e


def members(count: int) -> list[str]:
    return [f"m-{n:02d}" for n in range(count)]


def assert_sent_once(engines: Engines, engine: Engine, expected: set[tuple[str, str]]) -> None:
    """Each (member, template) was sent and is in the outbox once, under one message id."""
    outbox = engines.outbox()
    assert max(Counter(r["message_id"] for r in outbox).values()) == 1
    assert Counter((r["member_id"], r["template"]) for r in outbox) == Counter(expected)
    recorded = fetch_messages(engine)
    assert {(m.member_id, m.template_id, m.status) for m in recorded} == {
        (member, template, "sent") for member, template in expected
    }
    assert {m.message_id for m in recorded} == {r["message_id"] for r in outbox}
    assert dead_lettered(engines.redis_url) == {}, engines.tails()


def test_two_schedulers_and_two_workers_enrol_and_message_each_member_once(
    engines: Engines, pg_engine: Engine
) -> None:
    # given an onboarding journey with a wait and an abandoned-cart nudge, two schedulers and
    # two workers
    program = load_program(write_program(engines.program_dir, ONBOARDING, CART))
    engines.start_all("scheduler-1", "scheduler-2", "worker-1", "worker-2")
    people = members(20)

    # when members register and leave their carts
    for start in range(0, len(people), 5):
        now, batch = datetime.now(UTC), people[start : start + 5]
        ingest_now(pg_engine, program, [member_registered(m, now) for m in batch])
        ingest_now(pg_engine, program, [cart_updated(m, now) for m in batch])
    engines.wait_for(Settled(pg_engine, engines.redis_url, 2 * len(people)),
                     "every journey to end and every message to go", timeout_s=45)  # fmt: skip

    # then each member went through each campaign once, each step once, each message once
    rows = fetch_journeys(pg_engine)
    assert Counter((r.campaign_id, r.status) for r in rows) == {
        ("onboarding", "completed"): len(people),
        ("cart-nudge", "completed"): len(people),
    }
    assert len({(r.campaign_id, r.member_id) for r in rows}) == len(rows)
    steps = fetch_steps(pg_engine)
    onboarding = {"issue_coupon:first-brew-15", "send:welcome", "wait:4s", "send:welcome-reminder"}
    for row in rows:
        expected = onboarding if row.campaign_id == "onboarding" else {"send:cart-reminder"}
        assert set(steps[row.journey_id]) == expected, row
        assert {s.status for s in steps[row.journey_id].values()} == {"done"}
    assert sorted(c.member_id for c in fetch_journey_coupons(pg_engine)) == people
    templates = ("welcome", "welcome-reminder", "cart-reminder")
    assert_sent_once(engines, pg_engine, {(m, t) for m in people for t in templates})


def kill_and_replace(engines: Engines, engine: Engine) -> list[Any]:
    """SIGKILL the worker "doomed", start "replacement"; returns the journeys at the kill."""
    engines.kill("doomed")
    journeys = fetch_journeys(engine)
    engines.start("replacement", "worker", "--processes", "1", "--threads", "2")
    return journeys


def test_a_worker_killed_mid_journey_neither_repeats_nor_loses_a_step(
    engines: Engines, pg_engine: Engine
) -> None:
    # given journeys (a coupon, a message, a wait, a message) shared by two workers
    program = load_program(write_program(engines.program_dir, CRASH_COURSE))
    engines.start_all("scheduler", "doomed", "survivor")
    people = members(30)

    # when members keep coming (one actor message each), and one worker is killed as soon as
    # four journeys have run their first steps; a new worker starts
    at_kill: list[Any] = []
    for member in people:
        ingest_now(pg_engine, program, [member_registered(member, datetime.now(UTC))])
        if not at_kill and len(fetch_steps(pg_engine)) >= 4:
            at_kill = kill_and_replace(engines, pg_engine)
    if not at_kill:
        engines.wait_for(lambda: len(fetch_steps(pg_engine)) >= 4, "first steps", timeout_s=20)
        at_kill = kill_and_replace(engines, pg_engine)
    recovery = Recovery(pg_engine, engines.redis_url, heartbeat_timeout_ms=4_000)
    try:
        engines.wait_for(Settled(pg_engine, engines.redis_url, len(people)),
                         "every journey to end and every message to go", timeout_s=50,
                         each_poll=recovery)  # fmt: skip
    finally:
        recovery.close()

    # then the kill came mid-journey, and no step ran twice and none was lost
    assert {r.status for r in at_kill} == {"active"}, "killed after a journey completed"
    rows = fetch_journeys(pg_engine)
    assert sorted((r.member_id, r.status) for r in rows) == [(m, "completed") for m in people]
    steps = fetch_steps(pg_engine)
    assert {tuple(sorted(steps[r.journey_id])) for r in rows} == {
        ("issue_coupon:first-brew-15", "send:welcome", "send:welcome-reminder", "wait:3s")
    }
    coupons = fetch_journey_coupons(pg_engine)
    assert sorted(c.member_id for c in coupons) == people  # one coupon per journey
    issued = {s["issue_coupon:first-brew-15"].coupon_code for s in steps.values()}
    assert issued == {c.code for c in coupons}
    expected = {(m, t) for m in people for t in ("welcome", "welcome-reminder")}
    assert_sent_once(engines, pg_engine, expected)


class WaitingAt:
    """Every journey of the edit test waits at the step after its wait."""

    def __init__(self, engine: Engine, expected: int) -> None:
        self.engine, self.expected, self.state = engine, expected, ""

    def __call__(self) -> bool:
        rows = fetch_journeys(self.engine)
        self.state = str(Counter((r.status, r.step_id) for r in rows))
        at = {"reminder", "send:cart-coupon"}
        return len(rows) == self.expected and all(
            r.status == "active" and r.step_id in at for r in rows
        )


def test_an_edited_campaign_carries_its_journeys_in_flight_by_step_id(
    engines: Engines, pg_engine: Engine
) -> None:
    # given journeys waiting 10 s: the series' at `id: reminder`, the follow-up's at its
    # `send:cart-coupon`
    program = load_program(write_program(engines.program_dir, SERIES_BEFORE, FOLLOW_UP_BEFORE))
    before = {cid: version_of(c) for cid, c in program.campaigns.items()}
    engines.start_all("scheduler", "worker-1", "worker-2")
    people = members(10)
    now = datetime.now(UTC)
    ingest_now(pg_engine, program, [member_registered(m, now) for m in people])
    ingest_now(pg_engine, program, [cart_updated(m, now) for m in people])
    engines.wait_for(WaitingAt(pg_engine, 2 * len(people)), "the waits", timeout_s=20)

    # when the files are edited and the workers restart on them
    engines.stop("worker-1", "worker-2")
    earliest_due = min(r.next_run_at for r in fetch_journeys(pg_engine))
    assert datetime.now(UTC) < earliest_due, "the workers took longer to stop than the wait"
    write_campaigns(engines.program_dir, SERIES_AFTER, FOLLOW_UP_AFTER)
    after = {cid: version_of(c) for cid, c in load_program(engines.program_dir).campaigns.items()}
    engines.start_all("worker-3", "worker-4")
    engines.wait_for(Settled(pg_engine, engines.redis_url, 2 * len(people)),
                     "every journey to end", timeout_s=30)  # fmt: skip

    # then the series went on at `reminder` under the new version (not running the step
    # inserted before it nor the removed one); the follow-up exited, keeping its version
    rows, steps = fetch_journeys(pg_engine), fetch_steps(pg_engine)
    series = [r for r in rows if r.campaign_id == "welcome-series"]
    assert after["welcome-series"] != before["welcome-series"]
    assert {(r.status, r.reason, r.version) for r in series} == {
        ("completed", None, after["welcome-series"])
    }
    assert {tuple(sorted(steps[r.journey_id])) for r in series} == {
        ("issue_coupon:first-brew-15", "reminder", "send:welcome", "wait:10s")
    }
    follow_ups = [r for r in rows if r.campaign_id == "cart-follow-up"]
    assert {(r.status, r.reason, r.version) for r in follow_ups} == {
        ("exited", "step_removed", before["cart-follow-up"])
    }
    assert {tuple(sorted(steps[r.journey_id])) for r in follow_ups} == {
        ("issue_coupon:cart-steep-12", "wait:10s")
    }
    expected = {(m, t) for m in people for t in ("welcome", "welcome-reminder")}
    assert_sent_once(engines, pg_engine, expected)


def advance_now(engine: Engine, program: Program) -> datetime:
    """Run the due journeys' steps in this process; returns the time it ran them at."""
    now = datetime.now(UTC)
    ids = [r.journey_id for r in fetch_journeys(engine)]
    with unit_of_work(engine, now=now, program=program) as ctx:
        report = advance_journeys(ctx, ids)
    assert report.steps and not report.failed, report
    return now


def test_two_schedulers_fire_a_step_due_at_one_time_once(
    engines: Engines, pg_engine: Engine
) -> None:
    # given two schedulers (no worker) and journeys whose wait ends at the same instant
    program = load_program(write_program(engines.program_dir, CRASH_COURSE))
    engines.start_all("scheduler-1", "scheduler-2")
    ingest_now(pg_engine, program, [member_registered(m, datetime.now(UTC)) for m in members(5)])
    due = advance_now(pg_engine, program) + timedelta(seconds=3)

    # when that instant passes
    time.sleep((due - datetime.now(UTC)).total_seconds() + 2.5)

    # then one of the schedulers fired the due-steps job for it, not both
    with pg_engine.connect() as conn:
        firings = conn.execute(
            select(job_firings.c.fire_time, job_firings.c.claimed_by).where(
                job_firings.c.job_id == "campaigns.due_steps", job_firings.c.fire_time >= due
            )
        ).all()
    assert len(firings) == 1, firings


LAGGING = campaign("lagging", REGISTERED, COUPON, "wait: 1s", WELCOME)
# Another journey whose wait, seen by the scheduler, makes the due-steps job fire.
OTHER = campaign("other", "{event: cart.updated}", "wait: 1s", CART_REMINDER)


class OthersDone:
    """Every other journey completed (so the due-steps job has fired for a time after ``due``,
    and has nothing left to fire for), and every actor message is done."""

    def __init__(self, engine: Engine, redis_url: str, due: datetime) -> None:
        self.engine, self.redis_url, self.due, self.state = engine, redis_url, due, ""

    def __call__(self) -> bool:
        query = select(job_firings.c.fire_time).where(
            job_firings.c.job_id == "campaigns.due_steps", job_firings.c.fire_time > self.due
        )
        with self.engine.connect() as conn:
            fired = conn.execute(query).scalars().all()
        others = [r.status for r in fetch_journeys(self.engine) if r.member_id != "m-slow"]
        unfinished = unfinished_messages(self.redis_url)
        self.state = f"fired for {fired}; others {others}; {unfinished} actor message(s)"
        return bool(fired) and others == ["completed"] and unfinished == 0


def clear_of_the_sweep(seconds: float) -> None:
    """Wait, if need be, so the next ``seconds`` hold no firing of campaigns.sweep (*/5 min),
    which would run a forgotten journey and hide that nothing else did."""
    left = 300 - time.time() % 300
    if left < seconds:
        time.sleep(left + 1)


def test_a_step_that_fell_due_before_its_journey_was_committed_still_runs(
    engines: Engines, pg_engine: Engine
) -> None:
    # given a scheduler, a worker and two members
    program = load_program(write_program(engines.program_dir, LAGGING, OTHER))
    engines.start_all("scheduler", "worker")
    now = datetime.now(UTC)
    profiles = [member_registered(m, now) for m in ("m-slow", "m-other")]
    ingest(profiles, Intake(engine=pg_engine, now=now, registry=HandlerRegistry()))
    clear_of_the_sweep(40)

    # when a transaction enrols m-slow and runs its steps up to a 1 s wait, and commits only
    # after that second is over and the due-steps job has fired for another journey, the
    # last one due
    with unit_of_work(pg_engine, now=datetime.now(UTC), program=program) as ctx:
        candidates = [Candidate("m-slow", "slow")]
        [slow] = enrol(ctx.conn, program.campaigns["lagging"], candidates, now=ctx.now)
        advance_journeys(ctx, [slow])
        due = ctx.now + timedelta(seconds=1)
        time.sleep(1.5)
        ingest_now(pg_engine, program, [cart_updated("m-other", datetime.now(UTC))])
        others = OthersDone(pg_engine, engines.redis_url, due)
        engines.wait_for(others, "the other journey to be done", timeout_s=20)

    # then the step that fell due meanwhile still runs, not only at the 5-minute sweep
    def completed() -> bool:
        return {r.journey_id: r.status for r in fetch_journeys(pg_engine)}[slow] == "completed"

    engines.wait_for(completed, "m-slow's journey to go on after its wait", timeout_s=10)
