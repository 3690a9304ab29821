"""Wallets: issuing codes to members, generating unclaimed codes, reading, expiring, revoking.

Issuing is idempotent by ``issue_key`` (a unique column): a campaign step that runs twice gets
the same code back. A code expires ``valid_for`` after issue or at the end of ``valid_between``,
whichever is first; the daily job marks expired codes, and reads treat a code past its expiry
as expired even before the job runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.sql.dml import Insert

from core.db import insert_ignoring_any_conflict
from core.events.tables import members
from coupons.codes import RandomBytes, check_code_count, generate_codes, normalise_code
from coupons.definitions import CouponDefinition
from coupons.errors import CouponNotIssuable, UnknownCoupon, UnknownMember
from coupons.limits import ensure_counters
from coupons.snapshots import EXPIRED, ISSUED, RESERVED, REVOKED, STATUSES, WalletCoupon
from coupons.tables import coupon_codes

# Rows per INSERT when storing generated codes: 10,000 kept PostgreSQL at ~60k rows/s on the
# 2-core benchmark machine; larger batches gained nothing and held locks longer.
GENERATE_BATCH = 10_000
_ISSUE_ATTEMPTS = 5


def _insert_new(conn: Connection, table: Any) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` on any unique key (code or issue key)."""
    return insert_ignoring_any_conflict(conn, table)


def definition_of(program: Any, coupon_id: str) -> CouponDefinition:
    definition = program.coupons.get(coupon_id)
    if definition is None:
        raise UnknownCoupon(coupon_id, list(program.coupons))
    return definition


def expiry_for(definition: CouponDefinition, issued_at: datetime) -> datetime | None:
    """When a code issued at ``issued_at`` stops being valid (None: never)."""
    ends = [issued_at + definition.valid_for] if definition.valid_for else []
    if definition.valid_between is not None:
        ends.append(definition.valid_between.to)
    return min(ends) if ends else None


def _issuable(definition: CouponDefinition, now: datetime) -> None:
    window = definition.valid_between
    if window is not None and window.to < now:
        raise CouponNotIssuable(
            f"coupon {definition.id!r} ended at {window.to.isoformat()}; extend its "
            "valid_between in coupons.yaml or issue another coupon"
        )


def issue_coupon(
    conn: Connection,
    program: Any,
    *,
    coupon_id: str,
    member_id: str,
    now: datetime,
    issue_key: str | None = None,
    rng: RandomBytes | None = None,
) -> WalletCoupon:
    """Put a new code of ``coupon_id`` into the member's wallet; with an ``issue_key`` already
    used, return the code issued then instead."""
    definition = definition_of(program, coupon_id)
    if (
        conn.execute(select(members.c.member_id).where(members.c.member_id == member_id)).first()
        is None
    ):
        raise UnknownMember(member_id)
    _issuable(definition, now)
    ensure_counters(conn, [coupon_id])
    row = _row(definition, member_id=member_id, now=now, issue_key=issue_key)
    for _attempt in range(_ISSUE_ATTEMPTS):
        code = generate_codes(1, rng=rng)[0]
        statement = _insert_new(conn, coupon_codes).returning(coupon_codes.c.code)
        if conn.execute(statement, [{**row, "code": code}]).first() is not None:
            return fetch_codes(conn, [code])[code]
        if issue_key is not None:
            existing = conn.execute(
                select(coupon_codes).where(coupon_codes.c.issue_key == issue_key)
            ).first()
            if existing is not None:
                return WalletCoupon.from_row(existing)
    raise RuntimeError(f"{_ISSUE_ATTEMPTS} generated codes in a row were taken; check the RNG")


def _row(
    definition: CouponDefinition, *, member_id: str | None, now: datetime, issue_key: str | None
) -> dict[str, Any]:
    return {
        "coupon_id": definition.id,
        "member_id": member_id,
        "status": ISSUED,
        "issue_key": issue_key,
        "issued_at": now,
        "expires_at": expiry_for(definition, now),
        "updated_at": now,
    }


def generate_coupon_codes(
    conn: Connection,
    program: Any,
    *,
    coupon_id: str,
    count: int,
    now: datetime,
    rng: RandomBytes | None = None,
) -> list[str]:
    """Store ``count`` new unclaimed codes of the coupon (the first member to use one claims
    it); codes that collide with stored ones are replaced, so exactly ``count`` are new."""
    check_code_count(count)
    definition = definition_of(program, coupon_id)
    _issuable(definition, now)
    ensure_counters(conn, [coupon_id])
    template = _row(definition, member_id=None, now=now, issue_key=None)
    stored: dict[str, None] = {}
    statement = _insert_new(conn, coupon_codes).returning(coupon_codes.c.code)
    while len(stored) < count:
        batch = generate_codes(min(count - len(stored), GENERATE_BATCH), rng=rng, taken=stored)
        rows = [{**template, "code": code} for code in batch]
        stored.update(dict.fromkeys(conn.execute(statement, rows).scalars()))
    return list(stored)


def fetch_wallet(
    conn: Connection, member_id: str, *, statuses: Sequence[str] = (ISSUED, RESERVED)
) -> list[WalletCoupon]:
    """The member's codes in these statuses, oldest first."""
    query = (
        select(coupon_codes)
        .where(coupon_codes.c.member_id == member_id, coupon_codes.c.status.in_(list(statuses)))
        .order_by(coupon_codes.c.issued_at, coupon_codes.c.code)
    )
    return [WalletCoupon.from_row(row) for row in conn.execute(query)]


def fetch_codes(conn: Connection, codes: Sequence[str]) -> dict[str, WalletCoupon]:
    """The stored codes among ``codes`` (already normalised), by code."""
    if not codes:
        return {}
    query = select(coupon_codes).where(coupon_codes.c.code.in_(sorted(set(codes))))
    return {row.code: WalletCoupon.from_row(row) for row in conn.execute(query)}


def normalise_codes(texts: Sequence[str]) -> list[str]:
    """Codes as typed, normalised, duplicates dropped, order kept (InvalidCode if one is bad)."""
    return list(dict.fromkeys(normalise_code(text) for text in texts))


def expire_codes(conn: Connection, *, now: datetime) -> int:
    """Mark every unused code past its expiry as expired (one statement); returns how many."""
    c = coupon_codes.c
    result = conn.execute(
        update(coupon_codes)
        .where(c.status == ISSUED, c.expires_at.is_not(None), c.expires_at <= now)
        .values(status=EXPIRED, updated_at=now)
    )
    return result.rowcount


def revoke_code(conn: Connection, code: str, *, now: datetime) -> bool:
    """Withdraw an unused code; False if it was reserved, redeemed, expired or revoked."""
    c = coupon_codes.c
    result = conn.execute(
        update(coupon_codes)
        .where(c.code == normalise_code(code), c.status == ISSUED)
        .values(status=REVOKED, updated_at=now)
    )
    return result.rowcount == 1


def member_coupons(conn: Connection, member_id: str, *, now: datetime) -> list[dict[str, Any]]:
    """Every code the member holds, for ``members show`` (status as of ``now``)."""
    query = (
        select(coupon_codes)
        .where(coupon_codes.c.member_id == member_id)
        .order_by(coupon_codes.c.issued_at, coupon_codes.c.code)
    )
    return [
        {
            "coupon_id": entry.coupon_id,
            "code": entry.code,
            "status": entry.effective_status(now),
            "expires_at": entry.expires_at,
            "issued_at": entry.issued_at,
            "order_id": entry.order_id,
        }
        for entry in map(WalletCoupon.from_row, conn.execute(query))
    ]


def wallet_summary(conn: Connection, *, now: datetime) -> dict[str, int]:
    """How many codes members hold in each status as of ``now`` (unclaimed codes left out)."""
    c = coupon_codes.c
    query = select(c.status, func.count()).where(c.member_id.is_not(None)).group_by(c.status)
    counts: dict[str, int] = {status: n for status, n in conn.execute(query)}
    lapsed = conn.execute(
        select(func.count()).where(
            c.member_id.is_not(None), c.status == ISSUED, c.expires_at <= now
        )
    ).scalar_one()
    if lapsed:
        counts[ISSUED] -= lapsed
        counts[EXPIRED] = counts.get(EXPIRED, 0) + lapsed
    return {status: counts[status] for status in STATUSES if counts.get(status)}
