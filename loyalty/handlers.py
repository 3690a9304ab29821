"""Loyalty's event handlers: thin, batch-oriented, inside the intake transaction.

Subscription order matters and is kept here: referral codes and referrals first, then points
and tier upgrades (an order earns at the tier held before it), then referral qualification.
Without a program (``ctx.program`` None) they do nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.events.handlers import HandlerContext, subscribe
from core.events.types import Event
from loyalty.activity import process_activity
from loyalty.referral_codes import system_rng
from loyalty.referral_store import evaluate_referrals, record_registrations

POINTS_EVENTS = (
    "order.paid",
    "order.refunded",
    "review.posted",
    "content.shared",
    "member.registered",
)


@subscribe("member.registered")
def start_referrals(ctx: HandlerContext, events: Sequence[Event]) -> None:
    if ctx.program is not None:
        record_registrations(ctx.conn, events, now=ctx.now, program=ctx.program, rng=system_rng)


@subscribe(*POINTS_EVENTS)
def earn_and_reverse_points(ctx: HandlerContext, events: Sequence[Event]) -> None:
    if ctx.program is not None:
        process_activity(ctx, events, program=ctx.program)


@subscribe("order.paid")
def qualify_referrals(ctx: HandlerContext, events: Sequence[Event]) -> None:
    if ctx.program is not None:
        evaluate_referrals(
            ctx.conn, [e.member_id for e in events], now=ctx.now, program=ctx.program
        )
