"""Finding what a command names: a campaign of the loaded program, one of its variants."""

from __future__ import annotations

from typing import Any

from campaigns.definitions import Campaign
from campaigns.errors import CampaignNotFound, VariantNotFound


def find_campaign(program: Any, campaign_id: str) -> Campaign:
    """The loaded program's campaign; CampaignNotFound (with a did-you-mean) otherwise."""
    campaign: Campaign | None = program.campaigns.get(campaign_id)
    if campaign is None:
        raise CampaignNotFound(campaign_id, program.campaigns)
    return campaign


def check_variant(campaign: Campaign, variant: str) -> None:
    """VariantNotFound unless the campaign's experiment has the variant."""
    variants = campaign.experiment.variants if campaign.experiment else {}
    if variant not in variants:
        raise VariantNotFound(campaign.id, variant, variants)
