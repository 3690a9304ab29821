"""The effects of journey steps for a round of journeys: coupons, points, messages.

Each effect is keyed ``journey:<journey id>:<step id>``: the coupon issue key, the points
idempotency key, the message dedupe key. Running a step again finds its key taken and does
nothing new, which is what makes a step exactly-once (see campaigns.steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from campaigns.context import message_variables_for
from campaigns.definitions import Campaign, Step
from core.events.handlers import HandlerContext

if TYPE_CHECKING:
    from campaigns.steps import Run


@dataclass(frozen=True)
class Outcome:
    """A step's record: done or skipped (with why), and what it produced."""

    status: str = "done"
    reason: str | None = None
    member_id: str = ""
    message_id: str | None = None
    coupon_code: str | None = None
    points: int | None = None


def run_round(ctx: HandlerContext, runs: list[Run]) -> dict[int, Outcome]:
    """Each run's current step, every kind at once; the outcome by ``id(run)``."""
    outcomes: dict[int, Outcome] = {}
    for run in runs:
        if run.step.wait is not None:
            outcomes[id(run)] = Outcome(member_id=run.row.member_id)
        elif run.step.award_points is not None:
            outcomes[id(run)] = run_step(ctx, run.row, run.campaign, run.step, run.step_id)
    issues = [run for run in runs if run.step.issue_coupon is not None]
    outcomes.update(_issue_all(ctx, issues))
    sends = [run for run in runs if run.step.send is not None]
    outcomes.update(_send_all(ctx, sends))
    return outcomes


def effect_key(journey_id: str, step_id: str) -> str:
    return f"journey:{journey_id}:{step_id}"


def recipient_of(row: Any, step: Step) -> str:
    """The journey's member, or the referrer or referee a referral step names."""
    who = getattr(getattr(step, step.kind), "member", None)
    if who is None:
        return str(row.member_id)
    referral = (row.context or {}).get("referral") or {}
    return str(referral.get(f"{who}_id") or row.member_id)


def run_step(
    ctx: HandlerContext, row: Any, campaign: Campaign, step: Step, step_id: str
) -> Outcome:
    """The effect of one award_points step (sends and coupons run for a whole round at once)."""
    from loyalty.points import award_points

    assert step.award_points is not None
    member_id = recipient_of(row, step)
    award = step.award_points
    award_points(
        ctx, member_id, award.points, reason=award.reason,
        idempotency_key=effect_key(row.journey_id, step_id), now=ctx.now, program=ctx.program,
    )  # fmt: skip
    return Outcome(member_id=member_id, points=award.points)


def _issue_all(ctx: HandlerContext, runs: list[Run]) -> dict[int, Outcome]:
    from coupons.errors import CouponNotIssuable, UnknownMember
    from coupons.issuing import IssueRequest, issue_coupons

    if not runs:
        return {}
    requests = {
        id(run): IssueRequest(
            run.step.issue_coupon.coupon,  # type: ignore[union-attr]
            recipient_of(run.row, run.step),
            effect_key(run.row.journey_id, run.step_id),
        )
        for run in runs
    }
    issued = issue_coupons(ctx.conn, ctx.program, list(requests.values()), now=ctx.now)
    outcomes: dict[int, Outcome] = {}
    for key, request in requests.items():
        result = issued[request.issue_key]
        if isinstance(result, UnknownMember):
            outcomes[key] = Outcome("skipped", "unknown_member", request.member_id)
        elif isinstance(result, CouponNotIssuable):
            outcomes[key] = Outcome("skipped", "coupon_not_issuable", request.member_id)
        elif isinstance(result, Exception):
            raise result
        else:
            outcomes[key] = Outcome(member_id=request.member_id, coupon_code=result.code)
    return outcomes


def _send_all(ctx: HandlerContext, runs: list[Run]) -> dict[int, Outcome]:
    from notifications.requests import MessageRequest, request_messages

    if not runs:
        return {}
    recipients = [recipient_of(run.row, run.step) for run in runs]
    variables = message_variables_for(
        ctx.conn, [(run.row, member) for run, member in zip(runs, recipients, strict=True)],
        program=ctx.program, now=ctx.now,
    )  # fmt: skip
    requests = [
        MessageRequest(
            member_id=member,
            channels=run.step.send.channel,  # type: ignore[union-attr]
            template_id=run.step.send.template,  # type: ignore[union-attr]
            kind=run.campaign.kind,
            dedupe_key=effect_key(run.row.journey_id, run.step_id),
            variables=values,
            campaign_id=run.campaign.id,
        )
        for run, member, values in zip(runs, recipients, variables, strict=True)
    ]
    results = request_messages(ctx, requests, now=ctx.now, program=ctx.program)
    return {
        id(run): Outcome(
            "skipped" if result.status in ("suppressed", "failed") else "done",
            result.reason,
            request.member_id,
            message_id=result.message_id,
        )
        for run, request, result in zip(runs, requests, results, strict=True)
    }
