"""``campaigns preview``: every message a member would get from a campaign, and when.

The member is enrolled and their journey run to its end in a :mod:`campaigns.sandbox` (rolled
back, nothing enqueued): the very code production runs renders each message, picks its channel
and checks consent. Each wait moves the clock to the journey's next step; a marketing message
is then moved past the member's quiet hours (``notifications.preview.planned_send_time``).
Frequency caps are not applied: whether one is full depends on what else the member gets.

The journey starts from what the trigger would bring: the member's newest open cart (a cart
campaign), their newest order (``order.paid``), their referral (``referral_qualified``: the
member as referee, else as referrer of their newest referee). A member already in a journey of
the campaign, or inside its re-entry window, is previewed as a fresh entry (and told so).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from campaigns.assignment import HOLDOUT, control_share, steps_of
from campaigns.definitions import Campaign, step_ids
from campaigns.errors import MemberNotFound
from campaigns.journeys import Candidate, blocked_members, enrol, journey_id_for
from campaigns.lookup import check_variant, find_campaign
from campaigns.sandbox import StepRecord, advance, read_steps, sandbox, unpause
from campaigns.tables import journeys
from campaigns.trigger_context import trigger_context
from core.events.tables import members


@dataclass(frozen=True)
class CampaignPreview:
    """What the member would get: the arm, each step run (sends with their message), and
    what was assumed on the way (``notes``)."""

    campaign_id: str
    member_id: str
    arm: str
    kind: str
    context: str  # what the trigger's context came from: "open cart c-1", "no open cart"
    paused: bool = False
    forced: bool = False  # the arm came from --variant
    notes: tuple[str, ...] = ()
    steps: tuple[StepRecord, ...] = ()
    outcome: str = "completed"  # completed, holdout, exited:<reason>, active (a step failed)
    errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def messages(self) -> list[StepRecord]:
        return [step for step in self.steps if step.message is not None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "member_id": self.member_id,
            "arm": self.arm,
            "kind": self.kind,
            "forced_arm": self.forced,
            "paused": self.paused,
            "context": self.context,
            "notes": list(self.notes),
            "outcome": self.outcome,
            "errors": list(self.errors),
            "steps": [step.as_dict() for step in self.steps],
            "messages": [step.message.as_dict() | {"step_id": step.step_id,
                         "member_id": step.member_id} for step in self.messages if step.message],
        }  # fmt: skip


def preview_campaign(
    engine: Any,
    program: Any,
    campaign_id: str,
    *,
    member_id: str,
    variant: str | None = None,
    now: datetime,
) -> CampaignPreview:
    """Run the member's journey of the campaign in a sandbox and report what it would send."""
    campaign = find_campaign(program, campaign_id)
    if variant is not None:
        check_variant(campaign, variant)
    with sandbox(engine) as conn:
        _check_member(conn, member_id)
        paused = unpause(conn, campaign, now=now)
        notes = _make_room(conn, campaign, member_id, now=now)
        context, source = trigger_context(conn, campaign, member_id)
        key = f"preview:{now.isoformat()}"
        enrol(conn, campaign, [Candidate(member_id, key, context)], now=now,
              control=control_share(program))  # fmt: skip
        journey_id = journey_id_for(campaign.id, member_id, key)
        if variant is not None:
            _force_arm(conn, campaign, journey_id, variant, now=now)
        errors = advance(conn, [journey_id], program=program, now=now, to_end=True)
        row = conn.execute(select(journeys).where(journeys.c.journey_id == journey_id)).one()
        steps = [_planned(conn, step, campaign, program) for step in
                 read_steps(conn, [row], campaign=campaign)[journey_id]]  # fmt: skip
    if row.arm == HOLDOUT and variant is None:
        notes.append("the member is in the holdout: they get nothing (--variant previews one)")
    return CampaignPreview(
        campaign_id=campaign.id, member_id=member_id, arm=row.arm, kind=campaign.kind,
        context=source, paused=paused, forced=variant is not None, notes=tuple(notes),
        steps=tuple(steps), outcome=_outcome(row), errors=tuple(errors),
    )  # fmt: skip


def _check_member(conn: Connection, member_id: str) -> None:
    query = select(members.c.member_id).where(members.c.member_id == member_id)
    if conn.execute(query).first() is None:
        raise MemberNotFound(member_id)


def _make_room(conn: Connection, campaign: Campaign, member_id: str, *, now: datetime) -> list[str]:
    """Set aside (in the sandbox) the member's journeys that would keep them out."""
    if not blocked_members(conn, campaign, [member_id], now=now):
        return []
    conn.execute(
        delete(journeys).where(
            journeys.c.campaign_id == campaign.id, journeys.c.member_id == member_id
        )
    )
    return [
        "the member may not enter now (in a journey of this campaign, or inside its re-entry "
        "window); shown as if they entered afresh"
    ]


def _force_arm(
    conn: Connection, campaign: Campaign, journey_id: str, variant: str, *, now: datetime
) -> None:
    first = step_ids(steps_of(campaign, variant) or ())[0]
    conn.execute(
        update(journeys)
        .where(journeys.c.journey_id == journey_id)
        .values(arm=variant, status="active", reason=None, step_id=first, next_run_at=now,
                ended_at=None)
    )  # fmt: skip


def _planned(conn: Connection, step: StepRecord, campaign: Campaign, program: Any) -> StepRecord:
    """The step with its message's send time moved past the member's quiet hours."""
    from notifications.preview import planned_send_time

    message = step.message
    if message is None or message.send_at is None:
        return step
    at, reason = planned_send_time(
        conn, step.member_id, kind=campaign.kind, at=message.send_at, program=program
    )
    return replace(step, message=replace(message, send_at=at, send_reason=reason))


def _outcome(row: Any) -> str:
    if row.status == "exited":
        return f"exited:{row.reason}"
    if row.status == "completed" and row.reason == HOLDOUT:
        return HOLDOUT
    return str(row.status)
