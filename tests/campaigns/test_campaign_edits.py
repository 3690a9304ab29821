"""Editing a campaign while journeys wait in it, on the in-process path (unit_of_work and
advance_journeys, as a worker runs them) on SQLite and PostgreSQL: a journey goes on at the step
with the id it stored (``id:``, else the step's label), running what follows that step in the
new file; if the new file has no such step (or no such campaign), it exits and says why. A
journey that goes on stores the new file's version; one that exits keeps the version it ran."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from process_helpers import (
    fetch_journeys,
    fetch_messages,
    fetch_steps,
    member_registered,
    write_program,
)
from sqlalchemy import Engine

import worker
from campaigns.assignment import version_of
from campaigns.steps import advance_journeys
from core.events.handlers import unit_of_work
from core.events.intake import Intake, ingest
from core.program.loader import Program, load_program
from core.runtime import Runtime, set_runtime
from core.settings import Settings

ENTERED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
WAIT_OVER = ENTERED + timedelta(hours=2)

COUPON = "issue_coupon: first-brew-15"
WAIT = "wait: 1h"
NUDGE = "{id: nudge, send: {channel: email, template: welcome}}"
REMINDER = "send: {channel: push, template: welcome-reminder}"
WELCOME = "send: {channel: email, template: welcome}"  # no id: its id is "send:welcome"
BY_ID = (COUPON, WAIT, NUDGE, REMINDER)  # journeys wait at "nudge"
BY_LABEL = (COUPON, WAIT, WELCOME, REMINDER)  # journeys wait at "send:welcome"
BONUS_50 = "award_points: {points: 50, reason: edit-bonus}"
BONUS_70 = "award_points: {points: 70, reason: edit-bonus}"


def campaign(*steps: str) -> str:
    lines = "".join(f"  - {step}\n" for step in steps)
    return (
        "id: edited\nname: Edited\nkind: transactional\n"
        f"trigger: {{event: member.registered}}\nsteps:\n{lines}"
    )


# (before, after: None = the file is gone, status, reason, steps run after the edit, templates)
EDITS = {
    "unchanged": (BY_ID, BY_ID, "completed", None,
                  {"nudge", "send:welcome-reminder"}, {"welcome", "welcome-reminder"}),
    "a step inserted before the waited-at one is not run, one inserted after it is": (
        BY_ID, (COUPON, WAIT, BONUS_50, NUDGE, BONUS_70, REMINDER), "completed", None,
        {"nudge", "award_points:70", "send:welcome-reminder"}, {"welcome", "welcome-reminder"}),
    "the waited-at step keeps its id and runs its new content": (
        BY_ID, (COUPON, WAIT, "{id: nudge, send: {channel: push, template: welcome-reminder}}"),
        "completed", None, {"nudge"}, {"welcome-reminder"}),
    "the waited-at step moved to the end runs, and only it": (
        BY_ID, (COUPON, WAIT, REMINDER, NUDGE), "completed", None, {"nudge"}, {"welcome"}),
    "the waited-at step removed": (
        BY_ID, (COUPON, WAIT, REMINDER), "exited", "step_removed", set(), set()),
    "the waited-at step's id renamed": (
        BY_ID, (COUPON, WAIT, NUDGE.replace("nudge", "nudge-2"), REMINDER), "exited",
        "step_removed", set(), set()),
    "a label stays when only the channel changes": (
        BY_LABEL, (COUPON, WAIT, "send: {channel: [push, email], template: welcome}", REMINDER),
        "completed", None, {"send:welcome", "send:welcome-reminder"},
        {"welcome", "welcome-reminder"}),
    "another template is another label, so another step": (
        BY_LABEL, (COUPON, WAIT, REMINDER, REMINDER), "exited", "step_removed", set(), set()),
    "the campaign's file removed": (BY_ID, None, "exited", "campaign_removed", set(), set()),
}  # fmt: skip


@cache
def program_with(steps: tuple[str, ...] | None) -> Program:
    """The example program with this one campaign (None: no campaign), loaded once a session."""
    folder = Path(tempfile.mkdtemp(prefix="edited-")) / "program"
    return load_program(write_program(folder, *([campaign(*steps)] if steps else [])))


@pytest.fixture
def runtime(db_url: str, engine: Engine, tmp_path: Path) -> Iterator[Runtime]:
    """The embedded engine on the test database: whatever a step enqueues stays queued."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=db_url, redis_url=None, outbox=tmp_path / "outbox.jsonl"
    )
    built = Runtime(settings=settings)
    set_runtime(built)
    worker.setup(settings)
    yield built
    worker.setup(Settings(_env_file=None, redis_url=None))  # type: ignore[call-arg]


def advance(engine: Engine, program: Program, now: datetime) -> Any:
    ids = [row.journey_id for row in fetch_journeys(engine)]
    with unit_of_work(engine, now=now, program=program) as ctx:
        return advance_journeys(ctx, ids)


def run_after(engine: Engine, now: datetime) -> tuple[set[str], set[str]]:
    """The step ids run at ``now`` and the templates of the messages they requested."""
    steps = [s for found in fetch_steps(engine).values() for s in found.values()]
    ran = [s for s in steps if s.executed_at == now]
    message_ids = {s.message_id for s in ran if s.message_id}
    templates = {m.template_id for m in fetch_messages(engine) if m.message_id in message_ids}
    return {s.step_id for s in ran}, templates


@pytest.mark.parametrize(
    ("before", "after", "status", "reason", "ran", "templates"), EDITS.values(), ids=EDITS
)
def test_a_journey_waiting_through_an_edit_goes_on_at_its_step_or_exits(
    runtime: Runtime, engine: Engine, before: tuple[str, ...],
    after: tuple[str, ...] | None, status: str, reason: str | None, ran: set[str],
    templates: set[str],
) -> None:  # fmt: skip
    # given a member's journey waiting at its third step
    old = program_with(before)
    intake = Intake(engine=engine, now=ENTERED, program=old)
    ingest([member_registered("m-ada", ENTERED)], intake)
    advance(engine, old, ENTERED)
    [waiting] = fetch_journeys(engine)
    assert (waiting.status, waiting.step_id) == ("active", "nudge" if before == BY_ID else
                                                 "send:welcome")  # fmt: skip

    # when the file is edited, the workers load it, and the wait is over
    new = program_with(after)
    report = advance(engine, new, WAIT_OVER)

    # then the journey went on where the edit put its step, or exited saying why
    [journey] = fetch_journeys(engine)
    assert (journey.status, journey.reason, journey.step_id) == (status, reason, None)
    assert run_after(engine, WAIT_OVER) == (ran, templates)
    kept = new if status == "completed" else old
    assert journey.version == version_of(kept.campaigns["edited"])
    assert (report.completed, report.exited, report.failed) == (
        status == "completed", status == "exited", 0
    )  # fmt: skip
