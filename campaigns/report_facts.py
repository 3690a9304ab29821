"""What ``campaigns report`` is built from, fetched in a few set-based reads.

Journeys per arm, the journeys with a message sent, the campaign's messages grouped by channel,
status and reason, and its conversions (campaigns.goals) with their revenue. The messages are
read here with one ``GROUP BY`` over ``notification_messages`` by campaign: a report counts
thousands of messages, and fetching each one's state by id (notifications.states) would load
them all to count them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from campaigns.goals import fetch_conversions
from campaigns.lookup import find_campaign
from campaigns.tables import journey_steps, journeys
from notifications.tables import messages


@dataclass(frozen=True)
class MessageCount:
    """How many of the campaign's messages went by ``channel`` (None: none receivable) and
    stand at ``status`` for ``reason``."""

    channel: str | None
    status: str
    reason: str | None
    count: int


@dataclass(frozen=True)
class ConversionFact:
    """One conversion: the arm of the journey, when, and its revenue net of refunds."""

    arm: str
    converted_at: datetime
    revenue: Decimal


@dataclass(frozen=True)
class ReportFacts:
    """Everything a campaign report is computed from; no query runs after this."""

    campaign_id: str
    name: str
    zone: str
    now: datetime
    holdout: Decimal  # the experiment's share (0 without an experiment)
    variants: tuple[str, ...]  # the experiment's variants, in file order
    entered: dict[str, int]  # arm → journeys
    messaged: dict[str, int]  # arm → journeys with at least one message sent
    messages: tuple[MessageCount, ...]
    conversions: tuple[ConversionFact, ...]


def fetch_report_facts(
    conn: Connection, campaign_id: str, program: Any, now: datetime
) -> ReportFacts:
    """The facts of the program's campaign (CampaignNotFound for an id it does not have)."""
    campaign = find_campaign(program, campaign_id)
    experiment = campaign.experiment
    return ReportFacts(
        campaign_id=campaign.id,
        name=campaign.name,
        zone=program.program_file.program.timezone,
        now=now,
        holdout=Decimal(experiment.holdout) if experiment else Decimal(0),
        variants=tuple(experiment.variants) if experiment else (),
        entered=fetch_entered(conn, campaign.id),
        messaged=fetch_messaged(conn, campaign.id),
        messages=tuple(fetch_message_counts(conn, campaign.id)),
        conversions=tuple(
            ConversionFact(row["arm"], row["converted_at"], row["revenue"])
            for row in fetch_conversions(conn, campaign.id)
        ),
    )


def fetch_entered(conn: Connection, campaign_id: str) -> dict[str, int]:
    """Arm → journeys entered in the campaign."""
    query = (
        select(journeys.c.arm, func.count())
        .where(journeys.c.campaign_id == campaign_id)
        .group_by(journeys.c.arm)
    )
    return {arm: int(count) for arm, count in conn.execute(query)}


def fetch_messaged(conn: Connection, campaign_id: str) -> dict[str, int]:
    """Arm → journeys of the campaign with at least one message sent."""
    query = (
        select(journeys.c.arm, func.count(func.distinct(journeys.c.journey_id)))
        .select_from(
            journeys.join(journey_steps, journey_steps.c.journey_id == journeys.c.journey_id).join(
                messages, messages.c.message_id == journey_steps.c.message_id
            )
        )
        .where(journeys.c.campaign_id == campaign_id, messages.c.status == "sent")
        .group_by(journeys.c.arm)
    )
    return {arm: int(count) for arm, count in conn.execute(query)}


def fetch_message_counts(conn: Connection, campaign_id: str) -> list[MessageCount]:
    """The campaign's messages counted by channel, status and reason."""
    keys = (messages.c.channel, messages.c.status, messages.c.reason)
    query = select(*keys, func.count()).where(messages.c.campaign_id == campaign_id).group_by(*keys)
    rows = [
        MessageCount(ch, status, reason, int(n)) for ch, status, reason, n in conn.execute(query)
    ]
    return sorted(rows, key=lambda m: (m.channel or "", m.status, m.reason or ""))
