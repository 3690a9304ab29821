"""The tier ladder of program.yaml and the pure rules on it (no database, no clock).

Qualifying spend is net paid: each order paid in the trailing window counts its total minus
what was refunded of it (never below zero). Money is Decimal; the SQL job works in cents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

# Net paid is one rule for the tier ladder and CEL's member.qualifying_spend: it lives in core.
from core.cel.history import PaidOrder as PaidOrder
from core.cel.history import Refund as Refund
from core.cel.history import net_spend as net_spend

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Level:
    """One tier: its position on the ladder (0 = lowest), threshold and points multiplier."""

    id: str
    rank: int
    min_spend: Decimal
    multiplier: Decimal
    names: tuple[tuple[str, str], ...] = ()

    def name(self, locale: str | None = None) -> str:
        names = dict(self.names)
        return names.get(locale or "", "") or next(iter(names.values()), self.id)


@dataclass(frozen=True)
class TierLadder:
    """The levels lowest to highest, the trailing window and the downgrade grace period."""

    levels: tuple[Level, ...]
    window: timedelta
    grace: timedelta

    @classmethod
    def from_program(cls, program: Any) -> TierLadder:
        tiers = program.program_file.tiers
        levels = tuple(
            Level(
                id=level.id,
                rank=rank,
                min_spend=Decimal(level.min_spend),
                multiplier=Decimal(level.points_multiplier),
                names=tuple(level.name.items()),
            )
            for rank, level in enumerate(tiers.levels)
        )
        return cls(
            levels=levels,
            window=timedelta(days=tiers.window_days),
            grace=timedelta(days=tiers.downgrade_grace_days),
        )

    @property
    def lowest(self) -> Level:
        return self.levels[0]

    def level(self, tier_id: str | None) -> Level:
        """The level of ``tier_id``; a member never tiered (None) holds the lowest."""
        if tier_id is None:
            return self.lowest
        for level in self.levels:
            if level.id == tier_id:
                return level
        # A tier removed from program.yaml: the member is re-tiered by the next recalculation.
        return Level(id=tier_id, rank=-1, min_spend=ZERO, multiplier=Decimal(1))

    def for_spend(self, spend: Decimal) -> Level:
        """The highest level whose threshold ``spend`` reaches."""
        return [level for level in self.levels if spend >= level.min_spend][-1]

    def above(self, level: Level) -> Level | None:
        """The next level up, or None at the top."""
        higher = [candidate for candidate in self.levels if candidate.rank > level.rank]
        return higher[0] if higher else None


@dataclass(frozen=True)
class Progress:
    """Where a member stands: the tier, the spend, and what the next tier needs."""

    level: Level
    spend: Decimal
    next_level: Level | None
    needed: Decimal | None


def progress(ladder: TierLadder, tier_id: str | None, spend: Decimal) -> Progress:
    level = ladder.level(tier_id)
    upper = ladder.above(level) if level.rank >= 0 else ladder.for_spend(spend)
    needed = max(ZERO, upper.min_spend - spend) if upper else None
    return Progress(level=level, spend=spend, next_level=upper, needed=needed)


@dataclass(frozen=True)
class TierChange:
    """A tier change worked out by the rules: who, from, to, why, on what spend."""

    member_id: str
    from_tier: str | None
    to_tier: str
    direction: str  # "up" or "down"
    spend: Decimal
    at: datetime
    cause: str


def upgrade_for(
    ladder: TierLadder,
    member_id: str,
    current: str | None,
    spend: Decimal,
    *,
    at: datetime,
    cause: str,
) -> TierChange | None:
    """A paid order moves a member up at once when their spend crosses a higher threshold."""
    target, held = ladder.for_spend(spend), ladder.level(current)
    if target.rank <= held.rank:
        return None
    return TierChange(member_id, held.id, target.id, "up", spend, at, cause)
