"""Loyalty's ``member`` fields for CEL, supplied to core (:mod:`core.cel.sources`).

``member.tier`` and ``member.tier_rank`` come from ``member_tiers`` and ``tier_history`` (the
tier held at a moment: :meth:`TierFacts.tier_at`); ``member.referrals`` from ``referrals`` (those
settled by then). Each source fetches the whole batch in one query per table. Every other field,
and what each one means, is core's (:mod:`core.cel.variables`). Loyalty's engine events describe
their ``event.data`` here too, so ``check`` knows the fields campaigns may read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from core.cel.history import MemberHistory, Moments
from core.cel.sources import AsOf, MemberFieldSource, register_member_source
from core.cel.types import STRING, register_event_data
from core.db import in_values
from loyalty.ladder import TierLadder
from loyalty.tables import member_tiers, referrals, tier_history

TIERS = "loyalty.tiers"
REFERRALS = "loyalty.referrals"


@dataclass(frozen=True)
class TierChangeFact:
    changed_at: datetime
    from_tier: str | None
    cause: str


@dataclass(frozen=True)
class TierFacts:
    """A member's current tier (None: never tiered) and its changes, oldest first."""

    ladder: TierLadder
    tier_id: str | None = None
    changes: tuple[TierChangeFact, ...] = ()

    def tier_at(self, at: datetime, *, exclude_order: str | None = None) -> str | None:
        """The tier held at ``at``: the one the first later change moved away from (a change
        the excluded order caused counts as later: the order is judged without itself)."""
        excluded = f"order:{exclude_order}" if exclude_order else None
        for change in self.changes:
            if change.changed_at > at or change.cause == excluded:
                return change.from_tier
        return self.tier_id


def tier_facts(history: MemberHistory, ladder: TierLadder) -> TierFacts:
    """The tier facts fetched with ``history`` (none for a member outside the fetch)."""
    facts = history.provided.get(TIERS)
    return facts if isinstance(facts, TierFacts) else TierFacts(ladder)


def fetch_tier_facts(
    conn: Connection, ids: Sequence[str], program: Any, moments: Moments | None = None
) -> dict[str, TierFacts]:
    """The members' tiers and tier changes. Read only at ``moments``, a change made before the
    first of them is never the one :meth:`TierFacts.tier_at` stops at, unless an order the
    moments leave out caused it: only the others are fetched (a member's whole tier history
    was read for every batch of orders)."""
    ladder = TierLadder.from_program(program)
    held = dict(
        conn.execute(
            select(member_tiers.c.member_id, member_tiers.c.tier_id).where(
                in_values(conn, member_tiers.c.member_id, ids)
            )
        ).all()
    )
    changes: dict[str, list[TierChangeFact]] = defaultdict(list)
    history = tier_history.c
    query = (
        select(history.member_id, history.changed_at, history.from_tier, history.cause)
        .where(in_values(conn, history.member_id, ids))
        .order_by(history.changed_at, history.id)
    )
    if moments is not None:
        causes = sorted(f"order:{order_id}" for order_id in moments.excluded)
        later = history.changed_at > moments.first
        query = query.where(or_(later, in_values(conn, history.cause, causes)) if causes else later)
    for member_id, changed_at, from_tier, cause in conn.execute(query):
        changes[member_id].append(TierChangeFact(changed_at, from_tier, cause))
    return {m: TierFacts(ladder, held.get(m), tuple(changes[m])) for m in ids}


def read_tier(facts: TierFacts, as_of: AsOf) -> Mapping[str, Any]:
    level = facts.ladder.level(facts.tier_at(as_of.at, exclude_order=as_of.exclude_order))
    return {"tier": level.id, "tier_rank": level.rank}


def sample_tier(program: Any, name: str) -> TierFacts:
    ladder = TierLadder.from_program(program)
    levels = ladder.levels
    chosen = {"new": None, "regular": levels[min(1, len(levels) - 1)].id, "top": levels[-1].id}
    return TierFacts(ladder, chosen[name])


@dataclass(frozen=True)
class ReferralFacts:
    """When each of the member's referrals settled."""

    settled_at: tuple[datetime, ...] = ()


def fetch_referral_facts(
    conn: Connection, ids: Sequence[str], program: Any, moments: Moments | None = None
) -> dict[str, ReferralFacts]:
    query = select(referrals.c.referrer_id, referrals.c.decided_at).where(
        in_values(conn, referrals.c.referrer_id, ids), referrals.c.status == "settled"
    )
    settled: dict[str, list[datetime]] = defaultdict(list)
    for referrer_id, decided_at in conn.execute(query):
        settled[referrer_id].append(decided_at or _LONG_AGO)
    return {m: ReferralFacts(tuple(sorted(settled[m]))) for m in ids}


def read_referrals(facts: ReferralFacts, as_of: AsOf) -> Mapping[str, Any]:
    return {"referrals": sum(settled <= as_of.at for settled in facts.settled_at)}


_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
_SAMPLE_REFERRALS = {"new": 0, "regular": 1, "top": 5}


def sample_referrals(program: Any, name: str) -> ReferralFacts:
    return ReferralFacts((_LONG_AGO,) * _SAMPLE_REFERRALS[name])


TIER_SOURCE = MemberFieldSource(
    TIERS, ("tier", "tier_rank"), fetch_tier_facts, read_tier, sample_tier
)
REFERRAL_SOURCE = MemberFieldSource(
    REFERRALS, ("referrals",), fetch_referral_facts, read_referrals, sample_referrals
)

# ``event.data`` of the engine events loyalty emits (see tiers_store, tier_recalc, referral_store).
EVENT_DATA = {
    "tier.changed": ("direction", "from", "to", "qualifying_spend", "cause"),
    "tier.downgrade_pending": (
        "from",
        "to",
        "qualifying_spend",
        "keep_needs",
        "downgrade_at",
        "downgrade_on",
    ),
    "referral.qualified": (
        "referrer_member_id",
        "referee_member_id",
        "order_id",
        "referral_code",
    ),
}


def register_cel_fields() -> None:
    """Supply loyalty's member fields and describe its events' data (called by the wiring)."""
    register_member_source(TIER_SOURCE)
    register_member_source(REFERRAL_SOURCE)
    for event_type, names in EVENT_DATA.items():
        register_event_data(event_type, dict.fromkeys(names, STRING))
