"""Which arm of a campaign a member is in: a variant, the holdout, or ``main`` (no experiment).

Deterministic: a hash of the campaign, its salt and the member places the member on [0, 1);
the holdout takes the bottom share, the variants split the rest by weight. The same member
always lands in the same arm, on every worker, and the journey stores the arm it got.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from campaigns.definitions import Campaign, Step

MAIN = "main"
HOLDOUT = "holdout"
GLOBAL_CONTROL = "global_control"
_SCALE = 16**15


def position(campaign_id: str, member_id: str, *, salt: str = "") -> Decimal:
    """The member's place on [0, 1) for this campaign."""
    digest = hashlib.sha256(f"{campaign_id}\x1f{salt}\x1f{member_id}".encode()).hexdigest()
    return Decimal(int(digest[:15], 16)) / _SCALE


def control_share(program: Any) -> Decimal:
    """``messaging.global_control`` of a loaded program (0 without a program)."""
    if program is None:
        return Decimal(0)
    return Decimal(program.program_file.messaging.global_control)


def in_global_control(member_id: str, share: Decimal) -> bool:
    """Whether the member is in the program's global control group: the same members for every
    campaign (the hash does not involve one), and the same as long as the share stays."""
    return share > 0 and position("program:global_control", member_id) < share


def assign_arm(campaign: Campaign, member_id: str, *, control: Decimal = Decimal(0)) -> str:
    """The arm the member is in: a variant name, ``holdout`` or ``main``."""
    if campaign.kind == "marketing" and in_global_control(member_id, control):
        return GLOBAL_CONTROL
    experiment = campaign.experiment
    if experiment is None:
        return MAIN
    place = position(campaign.id, member_id, salt=experiment.salt)
    if place < experiment.holdout:
        return HOLDOUT
    if not experiment.variants:
        return MAIN
    share = (place - experiment.holdout) / (1 - experiment.holdout)
    total = sum(variant.weight for variant in experiment.variants.values())
    reached = Decimal(0)
    for name, variant in experiment.variants.items():
        reached += Decimal(variant.weight) / total
        if share < reached:
            return name
    return name  # rounding at the very top of the range


def steps_of(campaign: Campaign, arm: str) -> tuple[Step, ...] | None:
    """The steps an arm runs (None: the variant no longer exists; the holdout runs none)."""
    if arm in (HOLDOUT, GLOBAL_CONTROL):
        return ()
    if arm == MAIN:
        return campaign.steps or None
    variants = campaign.experiment.variants if campaign.experiment else {}
    variant = variants.get(arm)
    return variant.steps if variant else None


def version_of(campaign: Campaign) -> str:
    """A short fingerprint of the campaign file's meaning (stored with each journey)."""
    return hashlib.sha256(campaign.model_dump_json().encode()).hexdigest()[:12]
