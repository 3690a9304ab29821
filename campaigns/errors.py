"""Exceptions of the campaigns package.

Exceptions::

    CampaignError                 base of this package
    ├── CampaignNotFound          no campaign by that id in the program
    ├── MemberNotFound            no member by that id (preview)
    └── VariantNotFound           the campaign has no variant by that name (preview)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CampaignError(Exception):
    """Raised for a campaign request that cannot be done; the base of this package's errors."""


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class CampaignNotFound(CampaignError):
    """Raised when no campaign of the loaded program has the id."""

    def __init__(self, campaign_id: str, known: Iterable[str]) -> None:
        known = sorted(known)
        listed = ", ".join(known) or "none"
        super().__init__(
            f"no campaign by the id of {campaign_id!r} was found{_did_you_mean(campaign_id, known)}"
            f" (campaigns: {listed})"
        )
        self.campaign_id = campaign_id


class MemberNotFound(CampaignError):
    """Raised when no event has named the member."""

    def __init__(self, member_id: str) -> None:
        super().__init__(f"no member by the id of {member_id!r} was found")
        self.member_id = member_id


class VariantNotFound(CampaignError):
    """Raised when a campaign has no variant by the name asked for."""

    def __init__(self, campaign_id: str, variant: str, known: Iterable[str]) -> None:
        known = sorted(known)
        super().__init__(
            f"campaign {campaign_id!r} has no variant {variant!r}"
            f"{_did_you_mean(variant, known)} (variants: {', '.join(known) or 'none'})"
        )
