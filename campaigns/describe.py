"""A campaign file in words, for ``campaigns list`` and ``campaigns show``.

Pure: each function takes the parsed model (and the business time zone) and returns text or
JSON-ready values; nothing reads the database.
"""

from __future__ import annotations

from typing import Any

from campaigns.definitions import Campaign, Step, step_ids
from core.durations import format_duration


def trigger_text(campaign: Campaign, *, zone: str) -> str:
    """``cart abandoned: idle 2h, total at least 80``, ``event member.registered``…"""
    trigger = campaign.trigger
    if trigger.event is not None:
        when = f" when {trigger.when.source}" if trigger.when is not None else ""
        return f"event {trigger.event}{when}"
    if trigger.cart_abandoned is not None:
        rule = trigger.cart_abandoned
        idle = format_duration(rule.idle_for)
        return f"cart abandoned: idle {idle}, total at least {rule.min_total}"
    if trigger.schedule is not None:
        audience = trigger.schedule.audience
        who = f", audience {audience.source}" if audience is not None else ", every member"
        return f'schedule "{trigger.schedule.cron}" ({zone}){who}'
    if trigger.birthday is not None:
        days = trigger.birthday.days_before
        before = f"{days} day(s) before" if days else "on the day"
        return f"birthday: {before}, at {trigger.birthday.at:%H:%M} member's local time"
    if trigger.points_expiring is not None:
        expiring = trigger.points_expiring
        return (
            f"points expiring within {format_duration(expiring.within)}, "
            f"at least {expiring.min_points} points"
        )
    return "referral qualified: a referee's first qualifying order has settled"


def step_text(step: Step) -> str:
    """``send push or sms: birthday (to the referrer)``, ``wait 1d``, ``award 800 points``…"""
    if step.wait is not None:
        return f"wait {format_duration(step.wait)}"
    if step.send is not None:
        text = f"send {' or '.join(step.send.channel)}: {step.send.template}"
        who = step.send.member
    elif step.issue_coupon is not None:
        text = f"issue coupon {step.issue_coupon.coupon}"
        who = step.issue_coupon.member
    else:
        assert step.award_points is not None
        text = f"award {step.award_points.points} points ({step.award_points.reason})"
        who = step.award_points.member
    return text + (f" (to the {who})" if who else "")


def steps_view(steps: tuple[Step, ...]) -> list[dict[str, str]]:
    """Each step with the id journeys know it by and what it does."""
    return [
        {"step_id": step_id, "kind": step.kind, "text": step_text(step)}
        for step_id, step in zip(step_ids(steps), steps, strict=True)
    ]


def definition_view(campaign: Campaign, *, zone: str) -> dict[str, Any]:
    """The campaign's definition as ``campaigns show --json`` prints it."""
    experiment = campaign.experiment
    journeys = {
        "main" if loc == ("steps",) else str(loc[2]): steps_view(steps)
        for loc, steps in campaign.journeys()
    }
    return {
        "trigger": {"kind": campaign.trigger.kind, "text": trigger_text(campaign, zone=zone)},
        "steps": journeys,
        "experiment": None
        if experiment is None
        else {
            "holdout": str(experiment.holdout),
            "variants": {name: v.weight for name, v in experiment.variants.items()},
        },
        "exit_on": list(campaign.exit_on),
        "reentry_after": format_duration(campaign.reentry_after)
        if campaign.reentry_after
        else None,
        "goal": None
        if campaign.goal is None
        else {"event": campaign.goal.event, "within": format_duration(campaign.goal.within)},
    }


def reentry_text(campaign: Campaign) -> str:
    if campaign.reentry_after is None:
        return "enters once only"
    return f"may enter again {format_duration(campaign.reentry_after)} after entering"


def experiment_text(campaign: Campaign) -> str:
    experiment = campaign.experiment
    if experiment is None:
        return "none"
    total = sum(v.weight for v in experiment.variants.values())
    arms = ", ".join(f"{name} {v.weight}/{total}" for name, v in experiment.variants.items())
    holdout = f"holdout {experiment.holdout * 100:g}%"
    return f"{holdout}; variants {arms}" if arms else holdout
