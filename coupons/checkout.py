"""The checkout service: validate a cart's codes, reserve them for an order, release them.

Each function takes an open transaction (``unit_of_work`` or ``engine.begin()``): fetch,
decide with the pure rules, write. The writes are conditional statements (:mod:`coupons.holds`)
so limits hold under any concurrency; a refused reservation raises a
:class:`~coupons.errors.CheckoutRefused` and the caller's transaction rolls back.

A reservation holds its codes for :data:`DEFAULT_RESERVATION_TTL` and counts against every
limit and the budget at the discount reserved. Reserving again for the same order replaces its
reservation. Lapsed holds are released by a job and, lazily, by the next reservation or
redemption of the same coupon. Redemption and refunds: :mod:`coupons.redemption`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_

from coupons.carts import Cart
from coupons.combination import allocate, stacking_conflicts
from coupons.context import EligibilityContext
from coupons.decisions import Decision
from coupons.eligibility import CouponEvaluation, evaluate_coupon
from coupons.errors import CheckoutRefused, CodeUnavailable, InvalidCode, LimitReached, NotEligible
from coupons.facts import MemberFacts, fetch_member_facts
from coupons.holds import c, claim_use, release_where
from coupons.limits import fetch_usage
from coupons.rules import get_rules
from coupons.snapshots import CouponUsage, WalletCoupon
from coupons.wallet import expire_codes, fetch_codes, normalise_code

DEFAULT_RESERVATION_TTL = timedelta(minutes=15)
ZERO = Decimal("0.00")
UNKNOWN = Decision(False, "code.unknown")


@dataclass(frozen=True)
class CodeCheck:
    """One code asked for at checkout: whether it applies, its share of the discount, why."""

    code: str
    coupon_id: str | None
    eligible: bool
    discount: Decimal
    decisions: tuple[Decision, ...]


@dataclass(frozen=True)
class CartValidation:
    member_id: str
    checks: tuple[CodeCheck, ...]
    discount: Decimal

    @property
    def ok(self) -> bool:
        return all(check.eligible for check in self.checks)


@dataclass(frozen=True)
class Reservation:
    order_id: str
    member_id: str
    shares: Mapping[str, Decimal]
    discount: Decimal
    until: datetime


def validate_cart(
    conn: Connection,
    program: Any,
    *,
    member_id: str,
    cart: Cart,
    codes: Sequence[str],
    now: datetime,
    exclude_order: str = "",
    facts: MemberFacts | None = None,
    usage: Mapping[str, CouponUsage] | None = None,
    wallet: Sequence[WalletCoupon] = (),
) -> CartValidation:
    """Check codes for a cart without holding anything: conditions, limits as of now, and
    stacking among the codes given (the first one named in a group keeps its place).

    ``facts``, ``usage`` and ``wallet`` are the member's, already fetched as of ``now`` by a
    caller that also checks their wallet (:func:`coupons.checkout_check.check_checkout`): a
    code of the wallet is not fetched again, nor the usage of a coupon ``usage`` holds."""
    rules = get_rules(program)
    if facts is None:
        facts = fetch_member_facts(conn, program, member_id, now=now, exclude_order=exclude_order)
    wanted = requested_codes(codes)
    held = {entry.code: entry for entry in wallet}
    stored = held | fetch_codes(conn, [code for code in wanted if code and code not in held])
    mine = [stored[code] for code in wanted if code in stored and may_use(stored[code], member_id)]
    known = usage or {}
    missing = {entry.coupon_id for entry in mine} - known.keys()
    usage = {**known, **fetch_usage(conn, member_id, missing)} if missing else known
    ctx = EligibilityContext(cart=cart, facts=facts, now=now, rules=rules, usage=usage)
    evaluations = {e.code: evaluate_coupon(e, rules.coupons.get(e.coupon_id), ctx) for e in mine}
    conflicts = stacking_conflicts([e for e in evaluations.values() if e.eligible])
    usable = [e for e in evaluations.values() if e.eligible and e.code not in conflicts]
    shares = allocate(usable, cart)
    checks = tuple(
        _check(text, code, evaluations.get(code or ""), conflicts.get(code or ""), shares)
        for text, code in wanted.items()
    )
    return CartValidation(member_id, checks, sum(shares.values(), ZERO))


def requested_codes(texts: Sequence[str]) -> dict[str, str | None]:
    """Each distinct code as given → its normalised form (None if it cannot be a code)."""
    result: dict[str, str | None] = {}
    for text in texts:
        try:
            result.setdefault(text, normalise_code(text))
        except InvalidCode:
            result.setdefault(text, None)
    return {code or text: code for text, code in result.items()}


def may_use(entry: WalletCoupon, member_id: str) -> bool:
    """A member may use their own codes and generated codes nobody has claimed yet."""
    return entry.member_id in (member_id, None)


def _check(
    text: str,
    code: str | None,
    evaluation: CouponEvaluation | None,
    conflict: Decision | None,
    shares: Mapping[str, Decimal],
) -> CodeCheck:
    if evaluation is None:
        return CodeCheck(text, None, False, ZERO, (UNKNOWN,))
    decisions = evaluation.decisions + ((conflict,) if conflict else ())
    eligible = evaluation.eligible and conflict is None
    share = shares.get(evaluation.code, ZERO) if eligible else ZERO
    return CodeCheck(evaluation.code, evaluation.entry.coupon_id, eligible, share, decisions)


def reserve_codes(
    conn: Connection,
    program: Any,
    *,
    member_id: str,
    order_id: str,
    cart: Cart,
    codes: Sequence[str],
    now: datetime,
    ttl: timedelta = DEFAULT_RESERVATION_TTL,
) -> Reservation:
    """Hold the codes for the order until ``now + ttl``, counting against every limit; raises
    CheckoutRefused (with reason codes) if any code cannot be held: then nothing is held."""
    release_lapsed_holds(conn, codes, now=now)
    release_order(conn, order_id=order_id, now=now)
    validation = validate_cart(conn, program, member_id=member_id, cart=cart, codes=codes, now=now)
    if not validation.ok:
        raise _refusal(validation)
    until = now + ttl
    _claim_all(
        conn, program, validation, member_id=member_id, order_id=order_id, now=now, until=until
    )
    shares = {check.code: check.discount for check in validation.checks}
    return Reservation(order_id, member_id, shares, validation.discount, until)


def release_lapsed_holds(conn: Connection, codes: Sequence[str], *, now: datetime) -> None:
    """Free lapsed holds on these codes' coupons, so they count no more against the limits."""
    entries = fetch_codes(conn, [code for code in requested_codes(codes).values() if code])
    coupon_ids = sorted({entry.coupon_id for entry in entries.values()})
    if coupon_ids:
        lapsed = and_(c.coupon_id.in_(coupon_ids), c.reserved_until <= now)
        release_where(conn, lapsed, now=now, wait=True)


def _claim_all(
    conn: Connection,
    program: Any,
    validation: CartValidation,
    *,
    member_id: str,
    order_id: str,
    now: datetime,
    until: datetime | None,
) -> None:
    rules = get_rules(program).coupons
    stored = fetch_codes(conn, [check.code for check in validation.checks])
    for check in sorted(validation.checks, key=lambda k: (k.coupon_id or "", k.code)):
        assert check.coupon_id is not None
        refused = claim_use(
            conn,
            rules[check.coupon_id],
            stored[check.code],
            member_id=member_id,
            order_id=order_id,
            discount=check.discount,
            now=now,
            until=until,
        )
        if refused is not None:
            raise _refused(check.code, refused)


def _refusal(validation: CartValidation) -> CheckoutRefused:
    check = next(check for check in validation.checks if not check.eligible)
    failed = [d.code for d in check.decisions if not d.ok]
    return _refused(check.code, failed[0], failed)


def _refused(code: str, reason: str, reasons: Sequence[str] = ()) -> CheckoutRefused:
    reasons = tuple(reasons) or (reason,)
    if reason.startswith("code."):
        message = (
            f"code {code} cannot be used ({reason}): it is unknown, not the member's, "
            "already used, held for another order or expired"
        )
        return CodeUnavailable(message, code=code, reasons=reasons)
    if reason.startswith("limits."):
        message = f"code {code}: the coupon's limits have no room left ({reason})"
        return LimitReached(message, code=code, reasons=reasons)
    message = (
        f"code {code} does not apply to this cart ({', '.join(reasons)}); see coupons eligible"
    )
    return NotEligible(message, code=code, reasons=reasons)


def release_order(conn: Connection, *, order_id: str, now: datetime) -> list[str]:
    """Release the order's reservations (checkout abandoned or cancelled); returns the codes."""
    return release_where(conn, c.order_id == order_id, now=now)


def release_expired_reservations(conn: Connection, *, now: datetime) -> list[str]:
    """Release every reservation whose hold has lapsed (set-based, in chunks)."""
    return release_where(conn, c.reserved_until <= now, now=now)


def expire_wallets(conn: Connection, *, now: datetime) -> tuple[int, int]:
    """The daily job: release lapsed reservations, then mark codes past expiry as expired.
    Returns (released, expired)."""
    released = release_expired_reservations(conn, now=now)
    return len(released), expire_codes(conn, now=now)
