"""Refused redemptions: a code on a paid order that could not be redeemed, kept as a fact.

The order is paid whatever its codes' fate, so a refusal is not an error: it is a row of
``coupon_refusals`` with the order, member, code, coupon (when the code is known), the reason
code and params of the :class:`~coupons.decisions.Decision` that refused it, and the time the
order was paid. Rows are keyed on (order, code): a retried or replayed order records its
refusals once, whatever the number of runs. A batch of orders writes one bulk insert.

Params are stored as JSON (amounts as decimal strings, times as ISO-8601) and revived by
name when shown, so :mod:`coupons.reasons` renders them in the member's locale as it renders
the eligibility of a cart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from core.db import bulk_insert
from core.events.tables import members
from core.privacy import mask_text
from coupons.codes import normalise_code
from coupons.decisions import Decision
from coupons.errors import InvalidCode
from coupons.reasons import _DATES, _MONEY, _TIMES, ReasonText
from coupons.redemption import RedemptionOutcome
from coupons.rules import get_rules
from coupons.tables import coupon_refusals

MAX_CODE_LENGTH = 64  # the column's width: a refused "code" is whatever text the shop sent
r = coupon_refusals.c


@dataclass(frozen=True)
class Refusal:
    """One code of one paid order that was not redeemed, and why."""

    order_id: str
    member_id: str
    code: str
    reason: str
    refused_at: datetime
    coupon_id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    event_id: str | None = None

    @property
    def decision(self) -> Decision:
        return Decision(False, self.reason, self.params)


def refusals_of(
    outcomes: Iterable[RedemptionOutcome],
    *,
    order_id: str,
    member_id: str,
    refused_at: datetime,
    event_id: str | None = None,
) -> list[Refusal]:
    """The refusals among one order's redemption outcomes."""
    return [
        Refusal(
            order_id=order_id,
            member_id=member_id,
            code=clip_code(outcome.code),
            reason=outcome.reason or "code.unavailable",
            refused_at=refused_at,
            coupon_id=outcome.coupon_id,
            params=outcome.params,
            event_id=event_id,
        )
        for outcome in outcomes
        if not outcome.redeemed
    ]


def record_refusals(conn: Connection, refusals: Sequence[Refusal]) -> int:
    """Store the refusals (one statement); returns how many were new (a refusal already
    recorded for the same order and code is kept as it was)."""
    unique = {(f.order_id, f.code): f for f in refusals}
    rows = [_row(refusal) for refusal in unique.values()]
    written = bulk_insert(
        conn, coupon_refusals, rows, conflict_keys=("order_id", "code"), returning="order_id"
    )
    return len(written)


def _row(refusal: Refusal) -> dict[str, Any]:
    return {
        "order_id": refusal.order_id,
        "code": refusal.code,
        "member_id": refusal.member_id,
        "coupon_id": refusal.coupon_id,
        "reason": refusal.reason,
        "params": {name: _encode(value) for name, value in refusal.params.items()},
        "event_id": refusal.event_id,
        "refused_at": refusal.refused_at,
    }


def fetch_refusals(
    conn: Connection,
    *,
    member_id: str | None = None,
    order_id: str | None = None,
    limit: int = 50,
) -> list[tuple[Refusal, str | None]]:
    """The newest refusals (of a member, of an order), each with the member's locale."""
    query = (
        select(coupon_refusals, members.c.locale)
        .outerjoin(members, members.c.member_id == r.member_id)
        .order_by(r.refused_at.desc(), r.order_id, r.code)
        .limit(limit)
    )
    if member_id is not None:
        query = query.where(r.member_id == member_id)
    if order_id is not None:
        query = query.where(r.order_id == order_id)
    return [(_refusal(row), row.locale) for row in conn.execute(query)]


def count_refusals(conn: Connection, *, member_id: str) -> int:
    return conn.execute(
        select(func.count()).select_from(coupon_refusals).where(r.member_id == member_id)
    ).scalar_one()


def _refusal(row: Any) -> Refusal:
    return Refusal(
        order_id=row.order_id,
        member_id=row.member_id,
        code=row.code,
        reason=row.reason,
        refused_at=row.refused_at,
        coupon_id=row.coupon_id,
        params={name: _revive(name, value) for name, value in (row.params or {}).items()},
        event_id=row.event_id,
    )


def describe_refusals(
    found: Sequence[tuple[Refusal, str | None]], program: Any
) -> list[dict[str, Any]]:
    """JSON-ready refusals: the reason as text in each member's locale (the reason code when
    no program is loaded), codes that look like an email or phone number masked."""
    rules = get_rules(program) if program is not None else None
    texts: dict[str | None, ReasonText] = {}
    described = []
    for refusal, locale in found:
        text = refusal.reason
        if rules is not None:
            render = texts.setdefault(locale, ReasonText(rules, locale))
            text = render.render(refusal.decision, rules.coupons.get(refusal.coupon_id or ""))
        described.append(_described(refusal, text))
    return described


def _described(refusal: Refusal, text: str) -> dict[str, Any]:
    return {
        "refused_at": refusal.refused_at,
        "order_id": refusal.order_id,
        "member_id": refusal.member_id,
        "code": mask_code(refusal.code),
        "coupon_id": refusal.coupon_id,
        "reason": refusal.reason,
        "params": {name: _encode(value) for name, value in refusal.params.items()},
        "text": text,
        "event_id": refusal.event_id,
    }


def clip_code(text: str) -> str:
    return text if len(text) <= MAX_CODE_LENGTH else text[: MAX_CODE_LENGTH - 1] + "…"


def mask_code(text: str) -> str:
    """A refused code as printed: shops sometimes send an email or phone in the code field
    (a real code is shown as it is, even one of digits only)."""
    return text if _is_code(text) else mask_text(text)


def _is_code(text: str) -> bool:
    try:
        normalise_code(text)
    except InvalidCode:
        return False
    return True


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(_encode(item) for item in value)
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def _revive(name: str, value: Any) -> Any:
    """A stored param as the reason texts expect it (the names they format as money, dates)."""
    if not isinstance(value, str):
        return value
    if name in _MONEY:
        return Decimal(value)
    if name in _DATES or name in _TIMES:
        return datetime.fromisoformat(value)
    return value
