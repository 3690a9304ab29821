"""Issuing many coupons at once (campaign steps for a batch of journeys): one insert for all.

Each request carries an issue key; a key already used returns the code issued then, so a batch
retried after a crash issues nothing twice. A request that cannot be met (an unknown member, a
coupon past its end) gets its error instead of a code; the others are issued.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from core.db import in_values
from core.events.tables import members
from coupons.codes import generate_codes
from coupons.errors import CouponError, UnknownMember
from coupons.limits import ensure_counters
from coupons.snapshots import WalletCoupon
from coupons.tables import coupon_codes
from coupons.wallet import _insert_new, _issuable, _row, definition_of, issue_coupon


@dataclass(frozen=True)
class IssueRequest:
    """One code of ``coupon_id`` for ``member_id``, once per ``issue_key``."""

    coupon_id: str
    member_id: str
    issue_key: str


def issue_coupons(
    conn: Connection, program: Any, requests: Sequence[IssueRequest], *, now: datetime
) -> dict[str, WalletCoupon | CouponError]:
    """Issue every request (by issue key: the code, or why not)."""
    results: dict[str, WalletCoupon | CouponError] = dict(_existing(conn, requests))
    known = _known_members(conn, {r.member_id for r in requests if r.issue_key not in results})
    rows = []
    for request in requests:
        if request.issue_key in results:
            continue
        try:
            rows.append(_new_row(program, request, known, now))
        except CouponError as exc:
            results[request.issue_key] = exc
    if rows:
        ensure_counters(conn, {row["coupon_id"] for row in rows})
        codes = generate_codes(len(rows))
        statement = _insert_new(conn, coupon_codes).returning(coupon_codes)
        inserted = conn.execute(
            statement, [{**row, "code": code} for row, code in zip(rows, codes, strict=True)]
        )
        for row in inserted:
            results[row.issue_key] = WalletCoupon.from_row(row)
    for request in requests:  # a generated code someone else holds: issue it alone
        if request.issue_key not in results:
            results[request.issue_key] = issue_coupon(
                conn, program, coupon_id=request.coupon_id, member_id=request.member_id,
                now=now, issue_key=request.issue_key,
            )  # fmt: skip
    return results


def _new_row(program: Any, request: IssueRequest, known: set[str], now: datetime) -> dict[str, Any]:
    definition = definition_of(program, request.coupon_id)
    if request.member_id not in known:
        raise UnknownMember(request.member_id)
    _issuable(definition, now)
    return _row(definition, member_id=request.member_id, now=now, issue_key=request.issue_key)


def _existing(conn: Connection, requests: Sequence[IssueRequest]) -> dict[str, WalletCoupon]:
    keys = [request.issue_key for request in requests]
    if not keys:
        return {}
    query = select(coupon_codes).where(in_values(conn, coupon_codes.c.issue_key, keys))
    return {row.issue_key: WalletCoupon.from_row(row) for row in conn.execute(query)}


def _known_members(conn: Connection, member_ids: set[str]) -> set[str]:
    if not member_ids:
        return set()
    query = select(members.c.member_id).where(
        in_values(conn, members.c.member_id, list(member_ids))
    )
    return set(conn.execute(query).scalars())
