"""``campaigns dry-run``: who would enter a campaign now, in which arm, and what each would get.

The campaign's own trigger scan (campaigns.scans: abandoned carts, the schedule's audience,
birthdays, points about to expire) runs at ``now`` in a :mod:`campaigns.sandbox`, and the new
journeys run their first steps there: the same enrolment, arms, coupons and rendered messages
as a real firing, then everything is rolled back and nothing is enqueued.

Who was left out and why is told where the scan's candidates are cheap to know (carts,
audience, points): in a journey of the campaign already, inside its re-entry window, or
entered already for this very trigger (its cart version, firing, expiry date). Campaigns
triggered by events (``event``, ``referral_qualified``) enter members only as events arrive:
the dry run says so and counts their active journeys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from campaigns.assignment import control_share
from campaigns.definitions import Campaign
from campaigns.lookup import find_campaign
from campaigns.queries import (
    count_active,
    fetch_entry_history,
    fetch_journeys,
    journey_ids_entered_since,
)
from campaigns.sandbox import StepRecord, advance, read_steps, sandbox, unpause
from campaigns.scans import (
    audience_members,
    enrol_abandoned_carts,
    enrol_audience,
    enrol_birthdays,
    enrol_points_expiring,
    member_ids_between,
)
from campaigns.tables import cart_claims

EVENT_TRIGGERS = ("event", "referral_qualified")


@dataclass(frozen=True)
class Entrant:
    """A member who would enter: their arm and the first steps they would run now."""

    member_id: str
    arm: str
    status: str  # active, or completed for the holdout
    steps: tuple[StepRecord, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "arm": self.arm,
            "status": self.status,
            "steps": [step.as_dict() for step in self.steps],
        }


@dataclass(frozen=True)
class LeftOut:
    """A member the trigger found who would not enter, and why."""

    member_id: str
    reason: str  # in_journey, reentry_window, already_entered, not_entered
    until: datetime | None = None  # when the re-entry window ends

    def as_dict(self) -> dict[str, Any]:
        return {"member_id": self.member_id, "reason": self.reason, "until": self.until}


@dataclass(frozen=True)
class DryRun:
    campaign_id: str
    trigger: str
    now: datetime
    paused: bool = False
    event_triggered: bool = False
    active_journeys: int = 0
    entrants: tuple[Entrant, ...] = ()
    left_out: tuple[LeftOut, ...] | None = None  # None: not cheap to tell for this trigger
    errors: tuple[str, ...] = field(default_factory=tuple)

    def arms(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entrant in self.entrants:
            counts[entrant.arm] = counts.get(entrant.arm, 0) + 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "trigger": self.trigger,
            "now": self.now,
            "paused": self.paused,
            "event_triggered": self.event_triggered,
            "active_journeys": self.active_journeys,
            "entering": len(self.entrants),
            "arms": self.arms(),
            "entrants": [entrant.as_dict() for entrant in self.entrants],
            "left_out": None if self.left_out is None else [o.as_dict() for o in self.left_out],
            "errors": list(self.errors),
        }


# A scan enrols and returns the member ids it considered (None: not cheap to tell).
Scan = Callable[[Connection, Campaign, Any, datetime], list[str] | None]


def dry_run_campaign(engine: Any, program: Any, campaign_id: str, *, now: datetime) -> DryRun:
    """Run the campaign's trigger scan at ``now`` in a sandbox and report who would enter."""
    campaign = find_campaign(program, campaign_id)
    kind = campaign.trigger.kind
    with sandbox(engine) as conn:
        if kind in EVENT_TRIGGERS:
            return DryRun(campaign.id, kind, now, event_triggered=True,
                          active_journeys=count_active(conn, campaign.id))  # fmt: skip
        paused = unpause(conn, campaign, now=now)
        before = journey_ids_entered_since(conn, campaign.id, since=now)
        considered = SCANS[kind](conn, campaign, program, now)
        new = sorted(journey_ids_entered_since(conn, campaign.id, since=now) - before)
        rows = fetch_journeys(conn, new)
        active = [row.journey_id for row in rows if row.status == "active"]
        errors = advance(conn, active, program=program, now=now, to_end=False)
        steps = read_steps(conn, rows, campaign=campaign)
        entrants = tuple(
            Entrant(row.member_id, row.arm, row.status, tuple(steps[row.journey_id]))
            for row in rows
        )
        left_out = None
        if considered is not None:
            entered = {row.member_id for row in rows}
            left = sorted(set(considered) - entered)
            left_out = tuple(_reasons(conn, campaign, left, excluding=new, now=now))
    return DryRun(campaign.id, kind, now, paused=paused, entrants=entrants, left_out=left_out,
                  active_journeys=0, errors=tuple(errors))  # fmt: skip


def _reasons(
    conn: Connection,
    campaign: Campaign,
    member_ids: Sequence[str],
    *,
    excluding: Sequence[str],
    now: datetime,
) -> list[LeftOut]:
    history = fetch_entry_history(conn, campaign.id, member_ids, excluding=excluding)
    return [_reason(campaign, member_id, *history.get(member_id, (0, None)), now=now)
            for member_id in member_ids]  # fmt: skip


def _reason(
    campaign: Campaign, member_id: str, active: int, entered: datetime | None, *, now: datetime
) -> LeftOut:
    window = campaign.reentry_after
    if active:
        return LeftOut(member_id, "in_journey")
    if entered is None:
        return LeftOut(member_id, "not_entered")
    if window is not None and entered > now - window:
        return LeftOut(member_id, "reentry_window", entered + window)
    return LeftOut(member_id, "already_entered")  # this very trigger enrolled them before


def _carts(conn: Connection, campaign: Campaign, program: Any, now: datetime) -> list[str]:
    before = _claimed_at(conn, campaign, now)
    enrol_abandoned_carts(conn, campaign, now=now, control=control_share(program))
    return sorted(_claimed_at(conn, campaign, now) - before)


def _claimed_at(conn: Connection, campaign: Campaign, now: datetime) -> set[str]:
    query = select(cart_claims.c.member_id).where(
        cart_claims.c.campaign_id == campaign.id, cart_claims.c.claimed_at == now
    )
    return set(conn.execute(query).scalars())


def _audience(conn: Connection, campaign: Campaign, program: Any, now: datetime) -> list[str]:
    everyone = member_ids_between(conn, None, None)
    chosen = audience_members(conn, campaign, everyone, program=program, now=now)
    enrol_audience(conn, campaign, chosen, fire_time=now, program=program, now=now)
    return chosen


def _birthdays(conn: Connection, campaign: Campaign, program: Any, now: datetime) -> None:
    zone = program.program_file.program.timezone
    enrol_birthdays(conn, campaign, business_zone=zone, now=now, control=control_share(program))


def _expiring(conn: Connection, campaign: Campaign, program: Any, now: datetime) -> list[str]:
    from loyalty.expiry import fetch_expiring_points

    rule = campaign.trigger.points_expiring
    assert rule is not None
    found = fetch_expiring_points(
        conn, now=now, within=rule.within, program=program, min_points=rule.min_points
    )
    enrol_points_expiring(conn, campaign, program=program, now=now)
    return sorted({item.member_id for item in found})


SCANS: dict[str, Scan] = {
    "cart_abandoned": _carts,
    "schedule": _audience,
    "birthday": _birthdays,
    "points_expiring": _expiring,
}
