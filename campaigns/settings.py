"""Settings of the campaigns package (environment, or a ``.env`` file)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class CampaignSettings(BaseSettings):
    """``LOYALTY_REFERRAL_LINK``: the shop's referral page, ``{code}`` replaced by the code."""

    model_config = SettingsConfigDict(env_prefix="LOYALTY_", env_file=".env", extra="ignore")

    referral_link: str = "https://shop.example.com/r/{code}"


@lru_cache(maxsize=1)
def get_campaign_settings() -> CampaignSettings:
    return CampaignSettings()


def referral_link(code: str) -> str:
    return get_campaign_settings().referral_link.replace("{code}", code)
