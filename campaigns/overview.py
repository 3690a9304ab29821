"""The service behind ``campaigns list|show|pause|resume``: status and journeys, the stop switch.

A campaign's status is its file's ``status:`` unless ``campaigns pause|resume`` stored one in the
database, which then wins (campaigns.controls) and is shown as an override. "Entered today" is
the business day (program time zone) of the engine clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from campaigns.assignment import version_of
from campaigns.controls import Status, set_status
from campaigns.definitions import Campaign
from campaigns.describe import definition_view, trigger_text
from campaigns.lookup import find_campaign
from campaigns.queries import (
    Activity,
    Control,
    count_journeys,
    due_journey_ids,
    fetch_activity,
    fetch_control_rows,
)


@dataclass(frozen=True)
class CampaignStatus:
    """A campaign's status: the file's, or the override ``campaigns pause|resume`` stored."""

    status: str
    source: str  # file, or override
    changed_at: datetime | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "status_source": self.source,
            "status_changed_at": self.changed_at,
            "status_note": self.note,
        }


@dataclass(frozen=True)
class StatusChange:
    """What ``campaigns pause|resume`` did; ``due`` are the held journeys now due."""

    campaign_id: str
    previous: str
    status: str
    changed_at: datetime
    note: str | None
    due: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "previous": self.previous,
            "status": self.status,
            "changed_at": self.changed_at,
            "note": self.note,
            "journeys_due": len(self.due),
        }


def status_of(campaign: Campaign, controls: dict[str, Control]) -> CampaignStatus:
    control = controls.get(campaign.id)
    if control is None:
        return CampaignStatus(campaign.status, "file")
    return CampaignStatus(control.status, "override", control.changed_at, control.note)


def business_day(now: datetime, zone: str) -> tuple[datetime, datetime]:
    """The start and end (instants) of the business day ``now`` falls in."""
    tz = ZoneInfo(zone)
    day = now.astimezone(tz).date()
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start, end


def list_campaigns(conn: Connection, program: Any, *, now: datetime) -> list[dict[str, Any]]:
    """Every campaign of the program with its status, active journeys and entries today."""
    zone = program.program_file.program.timezone
    start, end = business_day(now, zone)
    activity = fetch_activity(conn, start=start, end=end)
    controls = fetch_control_rows(conn)
    rows = []
    for campaign in sorted(program.campaigns.values(), key=lambda c: c.id):
        counts = activity.get(campaign.id, Activity())
        rows.append(
            {
                "campaign_id": campaign.id,
                "name": campaign.name,
                "kind": campaign.kind,
                "trigger": campaign.trigger.kind,
                "trigger_text": trigger_text(campaign, zone=zone),
                **status_of(campaign, controls).as_dict(),
                "journeys_active": counts.active,
                "entered_today": counts.entered,
            }
        )
    return rows


def show_campaign(conn: Connection, program: Any, campaign_id: str) -> dict[str, Any]:
    """The campaign's definition in words, status, version, and its journeys by arm."""
    campaign = find_campaign(program, campaign_id)
    zone = program.program_file.program.timezone
    counts = count_journeys(conn, campaign_id=campaign.id).get(campaign.id, {})
    by_arm: dict[str, dict[str, int]] = {}
    for (arm, status, reason), count in sorted(counts.items(), key=_count_key):
        label = f"{status}:{reason}" if reason else status
        by_arm.setdefault(arm, {})[label] = count
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "kind": campaign.kind,
        "version": version_of(campaign),
        **status_of(campaign, fetch_control_rows(conn)).as_dict(),
        **definition_view(campaign, zone=zone),
        "journeys": {
            "total": sum(counts.values()),
            "by_arm": {arm: {"total": sum(c.values()), **c} for arm, c in by_arm.items()},
        },
    }


def _count_key(item: tuple[tuple[str, str, str | None], int]) -> tuple[str, str, str]:
    (arm, status, reason), _ = item
    return arm, status, reason or ""


def change_status(
    engine: Engine,
    program: Any,
    campaign_id: str,
    status: Status,
    *,
    now: datetime,
    note: str | None = None,
) -> StatusChange:
    """Pause or resume the campaign; on resume, returns the held journeys now due."""
    campaign = find_campaign(program, campaign_id)
    with engine.begin() as conn:
        previous = status_of(campaign, fetch_control_rows(conn)).status
        set_status(conn, campaign.id, status, now=now, note=note)
        due = due_journey_ids(conn, campaign.id, now=now) if status == "active" else []
    return StatusChange(campaign.id, previous, status, now, note, tuple(due))
