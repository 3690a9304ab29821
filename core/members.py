"""What ``members show`` prints: the foundation's part of a member, plus each package's section.

Packages append a :class:`MemberSection` to :data:`member_sections`; its ``fetch`` returns a
JSON-ready fragment merged into ``members show --json``, its ``render`` prints it for people.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from sqlalchemy import Connection, func, select

from core.events.tables import members, orders, refunds
from core.privacy import mask_email, mask_phone


class MemberNotFound(LookupError):
    """Raised when no event has named the member id."""

    def __init__(self, member_id: str) -> None:
        super().__init__(
            f"no member by the id of {member_id!r} was found; check the id or ingest "
            "its member.registered event"
        )
        self.member_id = member_id


@dataclass(frozen=True)
class MemberSection:
    """One package's part of ``members show``."""

    name: str
    fetch: Callable[[Connection, str, datetime, Any], dict[str, Any]]
    render: Callable[[dict[str, Any], Console], None]


member_sections: list[MemberSection] = []
CENT = Decimal("0.01")


def fetch_member_view(
    conn: Connection, member_id: str, *, now: datetime, program: Any = None
) -> dict[str, Any]:
    """The member as ``members show --json`` prints it (contact details masked)."""
    row = conn.execute(select(members).where(members.c.member_id == member_id)).first()
    if row is None:
        raise MemberNotFound(member_id)
    view = {
        "member_id": member_id,
        "first_name": row.first_name,
        "locale": row.locale,
        "timezone": row.timezone,
        "registered_at": row.registered_at,
        "email": mask_email(row.email),
        "phone": mask_phone(row.phone),
        "consents": {"email": row.consent_email, "sms": row.consent_sms, "push": row.consent_push},
        "orders": _order_totals(conn, member_id),
    }
    for section in member_sections:
        view.update(section.fetch(conn, member_id, now, program))
    return view


def _order_totals(conn: Connection, member_id: str) -> dict[str, Any]:
    paid = conn.execute(
        select(func.count(), func.coalesce(func.sum(orders.c.total), 0)).where(
            orders.c.member_id == member_id
        )
    ).one()
    refunded = conn.execute(
        select(func.coalesce(func.sum(refunds.c.amount), 0)).where(refunds.c.member_id == member_id)
    ).scalar()
    return {"paid_orders": paid[0], "paid": money_text(paid[1]), "refunded": money_text(refunded)}


def money_text(value: Any) -> str:
    """An amount as a string with two decimals, whatever the database returned for a sum."""
    return str(Decimal(str(value or 0)).quantize(CENT))
