"""Running journeys for real in a transaction that is always rolled back (preview, dry-run).

Inside a sandbox the production code runs unchanged: ``journeys.enrol`` enrols,
``steps.advance_journeys`` issues coupons, awards points and records messages (rendered by
notifications for the member, consent checked), each under its own keys. Then everything is
rolled back, and the ``HandlerContext``'s after-commit actions (enqueueing the sends and the
next steps) are never run: nothing is queued, sent, or left in any table.

What the journeys did is read back before the rollback as :class:`StepRecord` values, each
send with the message notifications recorded for it (:class:`MessageRecord`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from campaigns.assignment import steps_of
from campaigns.controls import paused_ids, set_status
from campaigns.definitions import Campaign, step_ids
from campaigns.queries import fetch_steps
from campaigns.steps import advance_journeys
from campaigns.tables import journeys
from core.db import in_values
from core.events.handlers import HandlerContext

# Rounds of advancing a journey through its waits: more than any campaign has steps, so a
# journey stuck retrying a failing step stops the preview instead of looping.
MAX_ROUNDS = 100


@dataclass(frozen=True)
class MessageRecord:
    """The message a send step recorded: rendered (or why not), and when it would go."""

    template_id: str
    status: str  # queued (it would go), suppressed or failed, with the reason
    reason: str | None
    channel: str | None
    to: str | None  # masked
    locale: str | None
    subject: str | None
    title: str | None
    body: str | None
    send_at: datetime | None = None  # None: it would not go
    send_reason: str | None = None  # quiet_hours: moved past the member's quiet hours

    @property
    def first_line(self) -> str:
        text = self.subject or self.title or self.body or ""
        return text.strip().splitlines()[0] if text.strip() else ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepRecord:
    """One step a journey ran: done or skipped (with why), and what it produced."""

    step_id: str
    kind: str
    status: str
    reason: str | None
    member_id: str  # who the step was for
    at: datetime
    coupon_code: str | None = None
    points: int | None = None
    message: MessageRecord | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["message"] = self.message.as_dict() if self.message else None
        return data


@contextmanager
def sandbox(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that is rolled back whatever happens inside."""
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            yield conn
        finally:
            transaction.rollback()


def unpause(conn: Connection, campaign: Campaign, *, now: datetime) -> bool:
    """Treat a paused campaign as active inside the sandbox; True if it was paused."""
    if campaign.id not in paused_ids(conn, {campaign.id: campaign}):
        return False
    set_status(conn, campaign.id, "active", now=now, note="sandbox")
    return True


def advance(
    conn: Connection, journey_ids: Sequence[str], *, program: Any, now: datetime, to_end: bool
) -> list[str]:
    """Run the journeys' due steps at ``now``; with ``to_end``, then at each next step's time
    until they end. Returns the errors of failed steps (a failing journey stops there)."""
    errors: list[str] = []
    at = now
    for _ in range(MAX_ROUNDS):
        ctx = HandlerContext(conn=conn, now=at, program=program)  # its after_commit never runs
        report = advance_journeys(ctx, journey_ids)
        errors += report.errors
        following = _next_run(conn, journey_ids)
        if not to_end or report.failed or following is None:
            break
        at = max(at, following)
    return errors


def _next_run(conn: Connection, journey_ids: Sequence[str]) -> datetime | None:
    query = select(func.min(journeys.c.next_run_at)).where(
        in_values(conn, journeys.c.journey_id, list(journey_ids)), journeys.c.status == "active"
    )
    return conn.execute(query).scalar()


def read_steps(
    conn: Connection, rows: Sequence[Any], *, campaign: Campaign
) -> dict[str, list[StepRecord]]:
    """Journey id → the steps it ran, in order, each send with its recorded message."""
    from notifications.store import fetch_messages

    ran = fetch_steps(conn, [row.journey_id for row in rows])
    message_ids = {s.message_id for steps in ran.values() for s in steps if s.message_id}
    found = fetch_messages(conn, message_ids)
    records: dict[str, list[StepRecord]] = {}
    for row in rows:
        order = {
            step_id: i for i, step_id in enumerate(step_ids(steps_of(campaign, row.arm) or ()))
        }
        steps = sorted(
            ran.get(row.journey_id, []), key=lambda s: (s.executed_at, order.get(s.step_id, 0))
        )
        records[row.journey_id] = [
            _record(step, found.get(step.message_id or "")) for step in steps
        ]
    return records


def _record(step: Any, message: Any) -> StepRecord:
    return StepRecord(
        step_id=step.step_id,
        kind=step.kind,
        status=step.status,
        reason=step.reason,
        member_id=step.member_id,
        at=step.executed_at,
        coupon_code=step.coupon_code,
        points=step.points,
        message=_message(message) if message is not None else None,
    )


def _message(row: Any) -> MessageRecord:
    return MessageRecord(
        template_id=row["template_id"],
        status=row["status"],
        reason=row["reason"],
        channel=row["channel"],
        to=row["to_masked"],
        locale=row["locale"],
        subject=row["subject"],
        title=row["title"],
        body=row["body"],
        send_at=row["not_before"] if row["status"] == "queued" else None,
    )
