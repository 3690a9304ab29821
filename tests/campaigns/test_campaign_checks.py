"""`check` on campaigns: journeys that do nothing, events nothing emits, audiences nobody meets.

Each mistake is reported at its file, line and column with a hint, like every other check.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.program.check import check_program
from core.program.never_true import why_never_true

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "program"

PROGRAM_YAML = """\
program: {{name: Small shop, currency: CNY, timezone: Asia/Shanghai, default_locale: en}}
tiers:
  window_days: 365
  recalculate_at: "03:00"
  downgrade_grace_days: {grace}
  levels:
{levels}
points:
  redeem: {{points_per_unit: 100}}
{referral}
messaging:
  sender: {{email: "Shop <shop@example.com>"}}
"""
LEVELS = {
    1: "    - {id: base, name: {en: Base}, min_spend: 0}",
    2: "    - {id: base, name: {en: Base}, min_spend: 0}\n"
    "    - {id: gold, name: {en: Gold}, min_spend: 1000}",
}
REFERRAL = "referral: {qualifying_order_min: 100, within_days: 30}"
TEMPLATE = "id: note\npush:\n  title: {en: Hello}\n  body: {en: 'Hello {{ member.first_name }}'}\n"


def small_program(
    tmp_path: Path, *, levels: int = 2, grace: int = 30, referral: bool = True, **campaigns: str
) -> Path:
    """A program with one template (``note``, push only), no coupons, and these campaigns."""
    program = tmp_path / "program"
    (program / "campaigns").mkdir(parents=True)
    (program / "templates").mkdir()
    text = PROGRAM_YAML.format(
        grace=grace, levels=LEVELS[levels], referral=REFERRAL if referral else ""
    )
    (program / "program.yaml").write_text(text, encoding="utf-8")
    (program / "coupons.yaml").write_text("coupons: []\n", encoding="utf-8")
    (program / "templates" / "note.yaml").write_text(TEMPLATE, encoding="utf-8")
    for name, body in campaigns.items():
        campaign = f"id: {name}\nname: {name}\nkind: marketing\n{body}"
        (program / "campaigns" / f"{name}.yaml").write_text(campaign, encoding="utf-8")
    return program


def errors(program: Path) -> list[str]:
    return [str(issue) for issue in check_program(program) if issue.severity == "error"]


SEND = "  - send: {channel: push, template: note}\n"


def test_the_small_program_checks_clean(tmp_path: Path) -> None:
    body = f"trigger: {{event: order.paid}}\nsteps:\n{SEND}"
    assert check_program(small_program(tmp_path, welcome=body)) == []


# --- a wait as the last step ------------------------------------------------------------------


def test_a_wait_as_the_last_step_of_a_journey_is_an_error(tmp_path: Path) -> None:
    body = f"trigger: {{event: order.paid}}\nsteps:\n{SEND}  - wait: 3d\n"

    assert errors(small_program(tmp_path, welcome=body)) == [
        "campaigns/welcome.yaml:7:11: steps[1].wait: a wait as the last step does nothing"
        " — remove it, or add a step after it"
    ]


def test_a_wait_as_the_last_step_of_a_variant_is_an_error(tmp_path: Path) -> None:
    body = (
        "trigger: {event: order.paid}\n"
        "experiment:\n"
        "  variants:\n"
        "    a: {weight: 1, steps: [{send: {channel: push, template: note}}]}\n"
        "    b:\n"
        "      weight: 1\n"
        "      steps:\n"
        "        - send: {channel: push, template: note}\n"
        "        - wait: 1d\n"
    )

    assert errors(small_program(tmp_path, welcome=body)) == [
        "campaigns/welcome.yaml:12:17: experiment.variants.b.steps[1].wait:"
        " a wait as the last step does nothing — remove it, or add a step after it"
    ]


def test_a_wait_between_steps_is_fine(tmp_path: Path) -> None:
    body = f"trigger: {{event: order.paid}}\nsteps:\n{SEND}  - wait: 3d\n{SEND}"
    assert errors(small_program(tmp_path, welcome=body)) == []


# --- step ids -----------------------------------------------------------------------------------


def test_two_steps_with_one_id_in_a_journey_are_an_error(tmp_path: Path) -> None:
    body = (
        "trigger: {event: order.paid}\nsteps:\n"
        "  - {id: hello, send: {channel: push, template: note}}\n"
        "  - wait: 1d\n"
        "  - {id: hello, send: {channel: push, template: note}}\n"
    )

    assert errors(small_program(tmp_path, welcome=body)) == [
        "campaigns/welcome.yaml:8:10: steps[2].id: duplicate step id 'hello'"
        " — steps[0] already uses it; journeys in flight find their step by its id"
    ]


def test_variants_may_reuse_each_others_step_ids(tmp_path: Path) -> None:
    step = "{id: hello, send: {channel: push, template: note}}"
    body = (
        "trigger: {event: order.paid}\nexperiment:\n  variants:\n"
        f"    a: {{weight: 1, steps: [{step}]}}\n"
        f"    b: {{weight: 1, steps: [{step}]}}\n"
    )
    assert errors(small_program(tmp_path, welcome=body)) == []


# --- events nothing produces --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("program", "event"),
    [
        ({"levels": 1}, "tier.changed"),
        ({"levels": 1}, "tier.downgrade_pending"),
        ({"grace": 0}, "tier.downgrade_pending"),  # a grace of 0 downgrades at once
        ({"referral": False}, "referral.qualified"),
    ],
)
def test_a_trigger_on_an_engine_event_the_program_never_emits_is_an_error(
    tmp_path: Path, program: dict[str, int | bool], event: str
) -> None:
    body = f"trigger: {{event: {event}}}\nsteps:\n{SEND}"

    [issue] = errors(small_program(tmp_path, welcome=body, **program))  # type: ignore[arg-type]

    assert issue.startswith(
        f"campaigns/welcome.yaml:4:18: trigger.event: nothing in this program emits {event}"
        f" — {event} needs "
    )


@pytest.mark.parametrize(
    "event", ["tier.changed", "tier.downgrade_pending", "referral.qualified", "order.refunded"]
)
def test_an_engine_event_the_program_emits_and_every_shop_event_are_fine(
    tmp_path: Path, event: str
) -> None:
    body = f"trigger: {{event: {event}}}\nsteps:\n{SEND}"
    assert errors(small_program(tmp_path, welcome=body)) == []


def test_the_hint_says_what_program_yaml_needs_for_the_event(tmp_path: Path) -> None:
    tier = f"trigger: {{event: tier.changed}}\nsteps:\n{SEND}"
    pending = f"trigger: {{event: tier.downgrade_pending}}\nsteps:\n{SEND}"

    assert errors(small_program(tmp_path, levels=1, tier=tier, pending=pending)) == [
        "campaigns/pending.yaml:4:18: trigger.event: nothing in this program emits"
        " tier.downgrade_pending — tier.downgrade_pending needs two tier levels or more and"
        " downgrade_grace_days above 0 (0 downgrades at once) in program.yaml",
        "campaigns/tier.yaml:4:18: trigger.event: nothing in this program emits tier.changed"
        " — tier.changed needs two tier levels or more in program.yaml",
    ]


def test_a_referral_qualified_trigger_needs_the_referral_section(tmp_path: Path) -> None:
    body = f"trigger: {{referral_qualified: {{}}}}\nsteps:\n{SEND}"

    assert errors(small_program(tmp_path, referral=False, reward=body)) == [
        "campaigns/reward.yaml:4:11: trigger.referral_qualified: nothing in this program emits"
        " referral.qualified — referral.qualified needs a referral: section in program.yaml"
    ]


def test_exit_on_and_goal_events_must_be_produced_too(tmp_path: Path) -> None:
    body = (
        "trigger: {event: order.paid}\n"
        "exit_on: [order.refunded, tier.changed]\n"
        "goal: {event: tier.changed, within: 7d}\n"
        f"steps:\n{SEND}"
    )

    assert errors(small_program(tmp_path, levels=1, welcome=body)) == [
        "campaigns/welcome.yaml:5:27: exit_on[1]: nothing in this program emits tier.changed"
        " — tier.changed needs two tier levels or more in program.yaml",
        "campaigns/welcome.yaml:6:15: goal.event: nothing in this program emits tier.changed"
        " — tier.changed needs two tier levels or more in program.yaml",
    ]


# --- audiences and when: that match nobody ------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ("false", "the constant false is never true"),
        ("1 > 2", "1 > 2 is always false"),
        ("member.paid_orders >= 1 && !true", "the constant !true is never true"),
        (
            "member.paid_orders >= 3 && member.paid_orders < 2",
            "member.paid_orders < 2 can never hold together with member.paid_orders >= 3",
        ),
        (
            "member.paid_orders > 2 && member.paid_orders < 3",
            "member.paid_orders < 3 can never hold together with member.paid_orders > 2",
        ),
        (
            "member.paid_orders < 0",
            "member.paid_orders is never below 0, so member.paid_orders < 0 is never true",
        ),
        (
            "member.days_since_registered < 0",
            "member.days_since_registered is never below 0,"
            " so member.days_since_registered < 0 is never true",
        ),
        (
            "member.birthday_month == 13",
            "member.birthday_month is always 1 to 12, so member.birthday_month == 13 is never true",
        ),
        (
            "member.paid_orders == 1.5",
            "member.paid_orders is a whole number, so member.paid_orders == 1.5 is never true",
        ),
        (
            'member.tier == "a" && member.tier == "b"',
            'member.tier == "b" can never hold together with member.tier == "a"',
        ),
        (
            '5 <= member.referrals && member.tier == "a" && member.referrals <= 4',
            "member.referrals <= 4 can never hold together with 5 <= member.referrals",
        ),
        (
            "member.paid_orders < 0 || false",
            "no side of || can be true: member.paid_orders is never below 0,"
            " so member.paid_orders < 0 is never true; the constant false is never true",
        ),
    ],
)
def test_conditions_that_are_never_true_say_why(condition: str, reason: str) -> None:
    found = why_never_true(condition)
    assert found is not None and found.reason == reason


@pytest.mark.parametrize(
    "condition",
    [
        "true",
        "member.paid_orders >= 2 && member.referrals < 3 && member.days_since_last_order <= 45",
        "member.paid_orders < 0 || member.paid_orders > 3",  # only every side never matching
        "member.paid_orders >= 2 && member.paid_orders <= 2",
        "member.net_spend > 2 && member.net_spend < 3",  # money is not whole
        'member.tier == "a" || member.tier == "b"',
        'member.tier != "a" && member.tier != "b"',
        "member.tier_rank == -1",  # a tier no longer in program.yaml
        "member.days_since_last_order == null || member.days_since_last_order > 30",
        "member.paid_orders > member.referrals && member.referrals > 5",  # field against field
        'event.data.direction == "up"',
        "size(member.tier) < 0",  # functions are not analysed
        "member.paid_orders >= ",  # syntax the CEL library rejects on its own
    ],
)
def test_conditions_that_may_be_true_are_left_alone(condition: str) -> None:
    assert why_never_true(condition) is None


def test_an_audience_that_matches_no_member_is_an_error_at_the_contradiction(
    tmp_path: Path,
) -> None:
    body = (
        "trigger:\n  schedule:\n    cron: '0 10 * * 1'\n"
        "    audience: member.paid_orders >= 3 && member.paid_orders < 2\n"
        f"steps:\n{SEND}"
    )

    assert errors(small_program(tmp_path, winback=body)) == [
        "campaigns/winback.yaml:7:42: trigger.schedule.audience: member.paid_orders < 2 can"
        " never hold together with member.paid_orders >= 3 — this audience matches no member"
    ]


def test_an_event_trigger_whose_when_matches_nobody_is_an_error(tmp_path: Path) -> None:
    body = f"trigger:\n  event: order.paid\n  when: member.paid_orders < 0\nsteps:\n{SEND}"

    assert errors(small_program(tmp_path, welcome=body)) == [
        "campaigns/welcome.yaml:6:9: trigger.when: member.paid_orders is never below 0,"
        " so member.paid_orders < 0 is never true"
        " — this when: matches no event, so no member ever enters the campaign"
    ]


# --- templates a campaign sends -----------------------------------------------------------------


def test_a_template_a_campaign_sends_needs_every_program_locale(tmp_path: Path) -> None:
    program = tmp_path / "program"
    shutil.copytree(EXAMPLE, program)
    path = program / "templates" / "welcome.yaml"  # sent by campaigns/welcome-onboarding.yaml
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(', en: "Welcome to Tea House Rewards"', ""), encoding="utf-8")

    assert errors(program) == [
        "templates/welcome.yaml:3:3: push.title: no text for locale 'en'"
        " — every text needs each program locale: zh-CN, en"
    ]
