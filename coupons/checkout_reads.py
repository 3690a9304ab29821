"""What a checkout reads, fetched as stored and kept apart from the time it is judged at.

:func:`coupons.checkout_check.check_checkout` reads two things and computes the rest:

* :class:`MemberReads`, one member's rows: their history (profile, orders, refunds and every
  registered source's facts, :mod:`core.cel.history`), their wallet, their uses of the wallet's
  coupons and their points rows (:class:`loyalty.holds.PointsRows`);
* each coupon's :class:`~coupons.limits.Counter` (all members' uses and spend).

Nothing in either depends on the time: expiry, validity windows, lapsed holds and the member's
variables are all computed as of the checkout's ``now``. So both can be kept and asked again:
:class:`CachedReads` keeps them in a :class:`core.readcache.ReadCache`, which drops a member or
a coupon as soon as PostgreSQL announces that its rows changed, and a repeated checkout of one
member costs no query. :data:`DATABASE` always reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Connection

from core.cel.history import MemberHistory, fetch_histories
from core.readcache import ReadCache
from coupons.errors import UnknownMember
from coupons.limits import NO_COUNTER, Counter, fetch_counters, fetch_member_uses
from coupons.snapshots import WalletCoupon
from coupons.wallet import fetch_wallet
from loyalty.holds import PointsRows, fetch_points_rows


@dataclass(frozen=True)
class MemberReads:
    """One member's rows a checkout reads (frozen, shared between threads when cached)."""

    history: MemberHistory
    wallet: tuple[WalletCoupon, ...]
    uses: Mapping[str, tuple[datetime, ...]] = field(hash=False)  # the wallet's coupons
    points: PointsRows = field(default_factory=PointsRows)


def fetch_member_reads(conn: Connection, program: Any, member_id: str) -> MemberReads:
    """The member's :class:`MemberReads`; UnknownMember if no event ever named them."""
    history = fetch_histories(conn, [member_id], program=program)[member_id]
    if history.profile is None:
        raise UnknownMember(member_id)
    wallet = tuple(fetch_wallet(conn, member_id))
    uses = fetch_member_uses(conn, member_id, {entry.coupon_id for entry in wallet})
    return MemberReads(history, wallet, uses, fetch_points_rows(conn, member_id))


class CheckoutReads(Protocol):
    """Where a checkout gets its reads."""

    def member(self, conn: Connection, program: Any, member_id: str) -> MemberReads: ...

    def counters(self, conn: Connection, coupon_ids: Sequence[str]) -> dict[str, Counter]: ...


class NeedsDatabase(Exception):
    """Raised by :data:`OFFLINE` when a checkout needs a read that is not kept."""


class _Offline:
    """A stand-in for a connection, for answering from kept reads alone: any use of it raises
    :class:`NeedsDatabase` (then the caller asks again with a real connection)."""

    def __getattr__(self, name: str) -> Any:
        raise NeedsDatabase(name)


# check_checkout(OFFLINE, ..., reads=CachedReads(cache)) answers without I/O or NeedsDatabase.
OFFLINE: Connection = cast(Connection, _Offline())


class DatabaseReads:
    """Every read from the database."""

    def member(self, conn: Connection, program: Any, member_id: str) -> MemberReads:
        return fetch_member_reads(conn, program, member_id)

    def counters(self, conn: Connection, coupon_ids: Sequence[str]) -> dict[str, Counter]:
        return fetch_counters(conn, coupon_ids)


DATABASE: CheckoutReads = DatabaseReads()


def member_key(member_id: str) -> str:
    """The key a change to the member's rows drops (the triggers' ``member:<id>``)."""
    return f"member:{member_id}"


def coupon_key(coupon_id: str) -> str:
    """The key a change to the coupon's counter drops (``coupon:<id>``)."""
    return f"coupon:{coupon_id}"


@dataclass(frozen=True)
class _Kept:
    """A member's reads and the program they were read for (a tier ladder is the program's)."""

    program: Any
    reads: MemberReads


class CachedReads:
    """Reads kept in ``cache`` until their rows change. The ticket is taken before the rows are
    read, so a change committed meanwhile keeps the read out of the cache (its announcement
    may come before the read is stored, or after and drop it)."""

    def __init__(self, cache: ReadCache[Any]) -> None:
        self.cache = cache

    def member(self, conn: Connection, program: Any, member_id: str) -> MemberReads:
        key = member_key(member_id)
        kept = self.cache.get(key)
        if isinstance(kept, _Kept) and kept.program is program:
            return kept.reads
        ticket = self.cache.ticket()
        reads = fetch_member_reads(conn, program, member_id)
        self.cache.put(key, _Kept(program, reads), ticket)
        return reads

    def counters(self, conn: Connection, coupon_ids: Sequence[str]) -> dict[str, Counter]:
        keys = {coupon_key(coupon_id): coupon_id for coupon_id in coupon_ids}
        found = {
            keys[key]: kept
            for key, kept in self.cache.get_many(list(keys)).items()
            if isinstance(kept, Counter)
        }
        missing = sorted(set(coupon_ids) - found.keys())
        if missing:
            ticket = self.cache.ticket()
            fetched = fetch_counters(conn, missing)
            for coupon_id in missing:
                # A coupon without a row yet is kept as unused: its row's insert announces.
                counter = fetched.get(coupon_id, NO_COUNTER)
                self.cache.put(coupon_key(coupon_id), counter, ticket)
                found[coupon_id] = counter
        return found
