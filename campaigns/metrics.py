"""The campaigns package's gauge on ``/metrics``: active journeys per campaign, read from
``campaign_journeys`` when scraped (registered by the wiring; see core.metrics)."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from campaigns.tables import journeys
from core.metrics import DatabaseGauge, Rows


def active_journeys_by_campaign(conn: Connection) -> Rows:
    query = (
        select(journeys.c.campaign_id, func.count())
        .where(journeys.c.status == "active")
        .group_by(journeys.c.campaign_id)
    )
    return [((campaign,), n) for campaign, n in conn.execute(query)]


JOURNEYS_ACTIVE = DatabaseGauge(
    name="loyalty_journeys_active",
    documentation="Journeys active now (not completed or exited), by campaign.",
    labels=("campaign",),
    read=active_journeys_by_campaign,
)
