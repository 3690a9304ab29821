"""What ``campaigns report`` is built from, fetched in a few set-based reads.

Journeys per arm, the journeys with a message sent, the campaign's messages grouped by channel,
status and reason, and its conversions (campaigns.goals) with their revenue. The messages are
counted by notifications.reports, each count one ``GROUP BY``: the journeys with a message sent
are this package's journey steps, handed to it as a subquery.
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
from notifications.reports import MessageCount, count_campaign_messages, count_with_a_sent_message

__all__ = ["ConversionFact", "MessageCount", "ReportFacts", "fetch_report_facts"]


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
        messages=tuple(count_campaign_messages(conn, campaign.id)),
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
    links = (
        select(
            journeys.c.arm.label("group"),
            journeys.c.journey_id.label("item"),
            journey_steps.c.message_id,
        )
        .select_from(
            journeys.join(journey_steps, journey_steps.c.journey_id == journeys.c.journey_id)
        )
        .where(journeys.c.campaign_id == campaign_id, journey_steps.c.message_id.is_not(None))
        .subquery()
    )
    return count_with_a_sent_message(conn, links)
