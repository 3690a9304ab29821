"""``campaigns preview`` and ``dry-run`` as services: the Tea House's journeys run for real in a
transaction that is rolled back, so they render what production would, and leave nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

import worker
from campaigns.controls import fetch_controls, set_status
from campaigns.dry_run import DryRun, LeftOut, dry_run_campaign
from campaigns.errors import CampaignNotFound, MemberNotFound, VariantNotFound
from campaigns.jobs import plan_audience, scan_carts
from campaigns.preview import CampaignPreview, preview_campaign
from core.broker import drain
from core.clock import FixedClock, using_clock
from core.db import metadata
from core.events.intake import Intake, ingest_lines
from core.runtime import Runtime, set_runtime
from core.settings import Settings

Play = Callable[..., Runtime]


def at(text: str) -> datetime:
    """A Shanghai time: ``at("2026-11-18 15:30")``."""
    return datetime.fromisoformat(text.replace(" ", "T") + "+08:00")


@pytest.fixture
def play(cli_env: Path, examples: Path) -> Play:
    """Replay the example scenario's events from ``since`` up to ``until``, each at its own
    time, with the work it causes (journeys' first steps, sends) run after it; no scheduled
    job fires. Returns the engine's runtime."""
    runtime = Runtime(settings=Settings())
    set_runtime(runtime)
    worker.setup(runtime.settings)
    scenario = (examples / "events" / "scenario.jsonl").read_text(encoding="utf-8").splitlines()

    def run(until: str, *, since: str = "2026-01-01 00:00") -> Runtime:
        start, end = at(since), at(until)
        timed = sorted(
            (datetime.fromisoformat(json.loads(line)["occurred_at"]), line) for line in scenario
        )
        for moment, line in timed:
            if start <= moment <= end:
                with using_clock(FixedClock(moment)):
                    intake = Intake.for_runtime(runtime, source="scenario", program=runtime.program)
                    ingest_lines([line], intake)
                    drain()
        return runtime

    return run


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in metadata.sorted_tables
        }


def outbox(runtime: Runtime) -> str:
    path = Path(runtime.settings.outbox)
    return path.read_text(encoding="utf-8") if path.exists() else ""


def preview(
    runtime: Runtime, campaign: str, member: str, now: str, **options: str
) -> CampaignPreview:
    return preview_campaign(
        runtime.engine, runtime.program, campaign, member_id=member, now=at(now), **options
    )


def dry_run(runtime: Runtime, campaign: str, now: str) -> DryRun:
    return dry_run_campaign(runtime.engine, runtime.program, campaign, now=at(now))


# Sam (London, no SMS consent) left celadon cups in his cart at 13:00 on 18 November.
SAM_CART = ("2026-11-18 13:30", "2026-09-15 00:00")


def test_a_preview_renders_each_message_of_the_journey_at_the_time_it_would_go(
    play: Play,
) -> None:
    runtime = play(SAM_CART[0], since=SAM_CART[1])

    result = preview(runtime, "cart-abandonment", "m-sam", "2026-11-18 13:30")

    assert (result.arm, result.context, result.outcome) == (
        "gentle-reminder", "open cart th-c-sam", "completed",
    )  # fmt: skip
    assert [step.step_id for step in result.steps] == [
        "send:cart-reminder", "wait:1d", "issue_coupon:cart-steep-12", "send:cart-coupon",
    ]  # fmt: skip
    reminder, coupon = (step.message for step in result.messages)
    assert reminder is not None and coupon is not None
    assert (reminder.channel, reminder.to, reminder.locale) == ("push", "…-m-sam", "en")
    assert reminder.title == "Your tea is still in the cart"
    # 13:30 in Shanghai is 05:30 in London: a marketing push waits for 08:30 there.
    assert (reminder.send_at, reminder.send_reason) == (at("2026-11-18 16:30"), "quiet_hours")
    assert (coupon.channel, coupon.to) == ("email", "s***@example.com")  # no SMS consent
    assert coupon.send_at == at("2026-11-19 16:30")  # a day later, after quiet hours again
    code = result.steps[2].coupon_code
    assert code and code in (coupon.body or "") and "Celadon tea cups" in (coupon.body or "")


def test_a_variant_asked_for_is_previewed_whatever_arm_the_member_is_in(play: Play) -> None:
    runtime = play(SAM_CART[0], since=SAM_CART[1])

    result = preview(runtime, "cart-abandonment", "m-sam", SAM_CART[0], variant="coupon-now")

    assert (result.arm, result.forced) == ("coupon-now", True)
    [message] = [step.message for step in result.messages]
    assert message is not None and (message.template_id, message.channel) == ("cart-coupon", "push")


def test_a_transactional_message_is_not_moved_past_quiet_hours(play: Play) -> None:
    runtime = play("2026-11-06 23:00", since="2026-01-01 00:00")

    upgrade = preview(runtime, "tier-upgrade", "m-lin", "2026-11-06 23:00")
    invite = preview(runtime, "referral-invite", "m-lin", "2026-11-06 23:00")

    [sent] = [step.message for step in upgrade.messages]
    assert sent is not None and (sent.send_at, sent.send_reason) == (at("2026-11-06 23:00"), None)
    [marketing] = [step.message for step in invite.messages]
    assert marketing is not None
    assert (marketing.send_at, marketing.send_reason) == (at("2026-11-07 08:30"), "quiet_hours")


def test_a_referral_preview_sends_each_step_to_the_referrer_or_the_referee(play: Play) -> None:
    runtime = play("2026-11-10 12:00")

    result = preview(runtime, "referral-reward", "m-mei", "2026-11-10 12:00")

    assert result.context == "referred by m-lin"
    assert [(step.step_id, step.member_id) for step in result.steps] == [
        ("award_points:800", "m-lin"),
        ("issue_coupon:friend-tea-25", "m-mei"),
        ("send:referral-rewarded", "m-lin"),
        ("send:referral-gift", "m-mei"),
    ]
    assert result.steps[0].points == 800


def test_a_member_in_the_holdout_is_told_they_would_get_nothing(play: Play) -> None:
    runtime = play("2026-11-10 12:00")

    result = preview(runtime, "win-back", "m-lin", "2026-11-10 12:00")

    assert (result.arm, result.outcome, result.steps) == ("holdout", "holdout", ())
    assert any("holdout" in note for note in result.notes)


def test_a_member_already_in_the_journey_is_previewed_as_a_fresh_entry(play: Play) -> None:
    runtime = play("2026-11-20 12:00", since=SAM_CART[1])  # Sam entered welcome on 15 September

    result = preview(runtime, "welcome-onboarding", "m-sam", "2026-11-20 12:00")

    assert any("afresh" in note for note in result.notes)
    assert [step.message.template_id for step in result.messages if step.message] == [
        "welcome", "welcome-reminder", "welcome-last-chance",
    ]  # fmt: skip
    last = result.messages[-1].message
    assert last is not None and (last.status, last.reason) == ("suppressed", "no_consent")


def test_a_paused_campaign_is_previewed_as_it_would_run_and_stays_paused(play: Play) -> None:
    runtime = play(SAM_CART[0], since=SAM_CART[1])
    with runtime.engine.begin() as conn:
        set_status(conn, "cart-abandonment", "paused", now=at(SAM_CART[0]))

    result = preview(runtime, "cart-abandonment", "m-sam", SAM_CART[0])

    assert result.paused and len(result.messages) == 2
    with runtime.engine.connect() as conn:
        assert fetch_controls(conn) == {"cart-abandonment": "paused"}


def test_previews_and_dry_runs_write_nothing_and_send_nothing(play: Play) -> None:
    runtime = play("2026-11-18 15:30", since=SAM_CART[1])
    before, sent = row_counts(runtime.engine), outbox(runtime)

    preview(runtime, "cart-abandonment", "m-sam", "2026-11-18 15:30")
    preview(runtime, "welcome-onboarding", "m-zhao", "2026-11-18 15:30")
    dry_run(runtime, "cart-abandonment", "2026-11-18 15:40")
    dry_run(runtime, "win-back", "2026-11-18 15:40")
    drain()  # anything enqueued would be sent now

    assert row_counts(runtime.engine) == before
    assert outbox(runtime) == sent


@pytest.mark.parametrize(
    ("campaign", "member", "variant", "error", "text"),
    [
        ("cart-abandonmnt", "m-sam", None, CampaignNotFound, "did you mean 'cart-abandonment'"),
        ("cart-abandonment", "m-nobody", None, MemberNotFound, "'m-nobody' was found"),
        ("cart-abandonment", "m-sam", "coupon", VariantNotFound, "did you mean 'coupon-now'"),
        ("welcome-onboarding", "m-sam", "a", VariantNotFound, "variants: none"),
    ],
)
def test_unknown_campaigns_members_and_variants_are_named_with_the_fix(
    play: Play,
    campaign: str,
    member: str,
    variant: str | None,
    error: type[Exception],
    text: str,
) -> None:
    runtime = play(SAM_CART[0], since=SAM_CART[1])

    with pytest.raises(error, match=re.escape(text)):
        preview_campaign(
            runtime.engine, runtime.program, campaign, member_id=member, variant=variant,
            now=at(SAM_CART[0]),
        )  # fmt: skip


def test_a_dry_run_of_a_cart_campaign_enrols_the_idle_cart_and_shows_its_first_step(
    play: Play,
) -> None:
    runtime = play("2026-11-18 14:50", since=SAM_CART[1])  # Zhao paid for her cart at 14:40

    result = dry_run(runtime, "cart-abandonment", "2026-11-18 15:30")

    [sam] = result.entrants
    assert (sam.member_id, sam.arm, sam.status) == ("m-sam", "gentle-reminder", "active")
    first, wait = sam.steps  # the first steps run now; the rest after the wait
    assert wait.step_id == "wait:1d" and first.message is not None
    assert (first.step_id, first.message.channel, first.message.first_line) == (
        "send:cart-reminder", "push", "Your tea is still in the cart",
    )  # fmt: skip
    assert result.left_out == ()


def test_a_dry_run_tells_that_a_member_with_a_new_cart_is_still_in_the_journey(
    play: Play,
) -> None:
    runtime = play("2026-11-18 14:50", since=SAM_CART[1])
    with using_clock(FixedClock(at("2026-11-18 15:00"))):  # the real scan takes Sam's cart
        scan_carts.send("cart-abandonment", at("2026-11-18 15:00").isoformat())
        drain()
    more = {"sku": "TW-221", "name": "Teapot", "category": "teaware", "price": "500.00", "qty": 1}
    added = {
        "id": "t-cart-2", "type": "cart.updated", "occurred_at": at("2026-11-18 15:10").isoformat(),
        "member_id": "m-sam", "data": {"cart_id": "th-c-sam", "total": "500.00", "items": [more]},
    }  # fmt: skip
    with using_clock(FixedClock(at("2026-11-18 15:10"))):
        intake = Intake.for_runtime(runtime, source="test", program=runtime.program)
        ingest_lines([json.dumps(added)], intake)
        drain()

    result = dry_run(runtime, "cart-abandonment", "2026-11-18 17:30")  # idle again since 17:10

    assert result.entrants == ()
    assert result.left_out == (LeftOut("m-sam", "in_journey"),)


def test_a_dry_run_of_a_schedule_tells_who_is_inside_the_reentry_window(play: Play) -> None:
    runtime = play("2026-11-06 19:00")

    before = dry_run(runtime, "referral-invite", "2026-11-06 19:30")
    with using_clock(FixedClock(at("2026-11-06 19:30"))):  # the Friday 19:30 firing, for real
        plan_audience.send("referral-invite", at("2026-11-06 19:30").isoformat())
        drain()
    after = dry_run(runtime, "referral-invite", "2026-11-06 20:00")

    assert [(e.member_id, e.arm) for e in before.entrants] == [("m-lin", "main")]
    assert after.entrants == ()
    assert after.left_out is not None
    [(member, reason, until)] = [(o.member_id, o.reason, o.until) for o in after.left_out]
    assert (member, reason) == ("m-lin", "reentry_window")
    assert until == at("2026-11-06 19:30") + timedelta(days=60)


def test_an_event_triggered_campaign_is_said_to_enter_only_on_events(play: Play) -> None:
    runtime = play("2026-11-10 12:00", since=SAM_CART[1])

    result = dry_run(runtime, "welcome-onboarding", "2026-11-10 12:00")

    assert result.event_triggered and result.entrants == ()
    assert result.active_journeys == 2  # Sam's and Zhao's (no order yet); Mei and Ivy paid
