"""Referral rules of program.yaml as pure functions over frozen facts.

A referral starts ``pending`` when a member registers with ``referred_by``. It is rejected, with
the reason recorded, when a ``reject`` check fails (``self_referral``, ``shared_phone``,
``shared_email``), when the referee's first paid order is below ``qualifying_order_min``
(``first_order_below_minimum``) or later than ``within_days`` after registering
(``first_order_too_late``), when no order came in time (``no_qualifying_order``), when the code
names no member by settlement (``unknown_code``), when that order's refunds bring it below the
minimum (``order_refunded``), or when the referrer already settled ``monthly_cap_per_referrer``
referrals in the business month (``monthly_cap_reached``). Otherwise it settles
``settle_after_days`` after the order was paid. A refund after settlement changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from core.program.program_file import Referral


@dataclass(frozen=True)
class Contact:
    member_id: str
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class FirstOrder:
    order_id: str
    total: Decimal
    paid_at: datetime
    refunded: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class ReferralFacts:
    """What a decision needs: both members, the code, when the referee joined, their first
    paid order, and how many referrals the referrer settled this business month."""

    referee: Contact
    referrer: Contact | None
    code: str
    registered_at: datetime
    first_order: FirstOrder | None = None
    settled_this_month: int = 0


@dataclass(frozen=True)
class Outcome:
    status: str  # pending, settled, rejected
    reason: str | None = None
    settle_at: datetime | None = None


def _same(left: str | None, right: str | None) -> bool:
    return bool(left and right and left.strip().casefold() == right.strip().casefold())


def _digits(phone: str | None) -> str | None:
    return "".join(ch for ch in phone if ch.isdigit()) or None if phone else None


def rejection(facts: ReferralFacts, rules: Referral) -> str | None:
    """The first ``reject`` check that fails, or None."""
    referrer, referee = facts.referrer, facts.referee
    if referrer is None:
        return None
    checks = {
        "self_referral": referrer.member_id == referee.member_id,
        "shared_phone": _same(_digits(referrer.phone), _digits(referee.phone)),
        "shared_email": _same(referrer.email, referee.email),
    }
    return next((check for check in rules.reject if checks[check]), None)


def assess(facts: ReferralFacts, rules: Referral) -> Outcome:
    """What the facts decide already: rejected, or pending (with its settle time once the
    first order qualified). Deadlines that pass with nothing happening are ``settle``'s."""
    reason = rejection(facts, rules)
    if reason:
        return Outcome("rejected", reason)
    order = facts.first_order
    if order is None:
        return Outcome("pending")
    if order.paid_at > facts.registered_at + timedelta(days=rules.within_days):
        return Outcome("rejected", "first_order_too_late")
    if order.total < rules.qualifying_order_min:
        return Outcome("rejected", "first_order_below_minimum")
    return Outcome("pending", settle_at=order.paid_at + timedelta(days=rules.settle_after_days))


def settle(facts: ReferralFacts, rules: Referral, *, now: datetime) -> Outcome:
    """The outcome at settlement time ``now``: settled, rejected, or still pending."""
    outcome = assess(facts, rules)
    if outcome.status != "pending":
        return outcome
    if outcome.settle_at is None:
        deadline = facts.registered_at + timedelta(days=rules.within_days)
        return Outcome("rejected", "no_qualifying_order") if now > deadline else outcome
    if outcome.settle_at > now:
        return outcome
    if facts.referrer is None:
        return Outcome("rejected", "unknown_code")
    order = facts.first_order
    assert order is not None
    if order.total - order.refunded < rules.qualifying_order_min:
        return Outcome("rejected", "order_refunded")
    cap = rules.monthly_cap_per_referrer
    if cap is not None and facts.settled_this_month >= cap:
        return Outcome("rejected", "monthly_cap_reached")
    return Outcome("settled", settle_at=outcome.settle_at)
