"""What eligibility knows about a member, fetched once, before any rule runs.

Rules never query: :func:`fetch_member_facts` fetches the members' histories through core
(:mod:`core.cel.history`, one query per table for the whole batch) and builds CEL's ``member``
with core's builder, as of the checkout time and without the order being paid. The conditions
that are not CEL (tiers, first order, the member's locale for reasons) read the same values,
so a coupon's ``eligibility.tiers`` and a ``when: member.tier == …`` always agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from core.cel.history import MemberHistory, fetch_histories
from core.cel.variables import VariableSettings, member_variables
from coupons.errors import UnknownMember


@dataclass(frozen=True)
class MemberFacts:
    """CEL's ``member`` for one checkout, and the fields the other conditions read from it."""

    member_id: str
    tier: str
    tier_rank: int
    locale: str | None = None
    paid_orders: int = 0
    member: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def of(cls, member: Mapping[str, Any]) -> MemberFacts:
        """Facts from a built ``member`` variable (see core.cel.variables)."""
        return cls(
            member_id=member["id"],
            tier=member["tier"],
            tier_rank=member["tier_rank"],
            locale=member["locale"],
            paid_orders=member["paid_orders"],
            member=member,
        )

    @property
    def first_order(self) -> bool:
        """Whether an order now would be the member's first paid order."""
        return self.paid_orders == 0

    def cel(self) -> dict[str, Any]:
        """The CEL ``member`` variable (a copy: CEL results are cached by value)."""
        return dict(self.member)


def fetch_member_facts(
    conn: Connection, program: Any, member_id: str, *, now: datetime, exclude_order: str = ""
) -> MemberFacts:
    """Everything a coupon rule may ask about the member; ``exclude_order`` is left out of the
    member's history (the order being paid, already in the projection when handlers run)."""
    orders = {member_id: exclude_order} if exclude_order else {}
    return fetch_members_facts(conn, program, [member_id], now=now, exclude_orders=orders)[
        member_id
    ]


def fetch_members_facts(
    conn: Connection,
    program: Any,
    member_ids: Sequence[str],
    *,
    now: datetime,
    exclude_orders: Mapping[str, str] | None = None,
) -> dict[str, MemberFacts]:
    """:func:`fetch_member_facts` for a batch of members at once; raises UnknownMember for a
    member the engine has never seen."""
    settings = VariableSettings.from_program(program)
    excluded = exclude_orders or {}
    return {
        member_id: member_facts(
            history, settings, now=now, exclude_order=excluded.get(member_id, "")
        )
        for member_id, history in fetch_histories(conn, member_ids, program=program).items()
    }


def member_facts(
    history: MemberHistory, settings: VariableSettings, *, now: datetime, exclude_order: str = ""
) -> MemberFacts:
    """The member's facts from their fetched history, as of ``now``; pure (UnknownMember for a
    member the engine has never seen)."""
    if history.profile is None:
        raise UnknownMember(history.member_id)
    member = member_variables(history, settings, at=now, exclude_order=exclude_order or None)
    return MemberFacts.of(member)
