"""`check`: every mistake in a program directory is reported at its file, line and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.program.check import check_program, has_errors
from core.program.yamlsource import ProgramIssue

REPO = Path(__file__).resolve().parents[2]
PROGRAM = REPO / "examples" / "program"


def _copy(tmp_path: Path) -> Path:
    program = tmp_path / "program"
    shutil.copytree(PROGRAM, program)
    return program


def _edit(program: Path, file: str, old: str, new: str) -> None:
    path = program / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {file} exactly once"
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_the_example_program_checks_clean() -> None:
    assert check_program(PROGRAM) == []


# (file, text in the example, replacement, the one issue `check` reports)
MISTAKES = {
    "unknown field": (
        "coupons.yaml",
        "      min_order_total: 120",
        "      min_totl: 120",
        "coupons.yaml:32:7: coupons[2].eligibility.min_totl: unknown field"
        " — did you mean 'min_order_total'?",
    ),
    "wrong type": (
        "program.yaml",
        "  window_days: 365 ",
        "  window_days: a year ",
        "program.yaml:11:16: tiers.window_days: expected a whole number, got 'a year'",
    ),
    "missing coupon": (
        "campaigns/welcome-onboarding.yaml",
        "- issue_coupon: first-brew-15",
        "- issue_coupon: first-brew-16",
        "campaigns/welcome-onboarding.yaml:9:19: steps[0].issue_coupon:"
        " no coupon 'first-brew-16' in coupons.yaml — did you mean 'first-brew-15'?",
    ),
    "template lacks a channel": (
        "campaigns/tier-upgrade.yaml",
        "{channel: [email, push],",
        "{channel: [email, sms],",
        "campaigns/tier-upgrade.yaml:8:12: steps[0].send.channel: template 'tier-upgraded'"
        " has no sms message, but this step may send by sms"
        " — add sms to templates/tier-upgraded.yaml or drop it from channel",
    ),
    "CEL syntax error": (
        "campaigns/tier-upgrade.yaml",
        'direction == "up"',
        'direction == = "up"',
        "campaigns/tier-upgrade.yaml:6:33: trigger.when: syntax error at column 25 of"
        ' \'event.data.direction == = "up" && member.tier != "leaf"\':'
        " token recognition error at: '= '",
    ),
    "unknown CEL variable": (
        "coupons.yaml",
        "when: now.day == 8 ",
        "when: nw.day == 8 ",
        "coupons.yaml:57:13: coupons[5].eligibility.when:"
        " unknown variable 'nw', did you mean 'now'?",
    ),
    "bad duration": (
        "coupons.yaml",
        "valid_for: 36h",
        "valid_for: 2 days",
        "coupons.yaml:33:16: coupons[2].valid_for:"
        " expected a duration such as 90s, 15m, 1h, 3d or 2w, got '2 days'",
    ),
    "bad cron": (
        "campaigns/referral-invite.yaml",
        'cron: "30 19 * * 5"',
        'cron: "30 19 * *"',
        "campaigns/referral-invite.yaml:6:11: trigger.schedule.cron: invalid cron '30 19 * *':"
        " wrong number of fields; got 4, expected 5"
        ' — 5 fields: minute hour day-of-month month day-of-week, such as "0 10 * * 6"',
    ),
    "naive datetime": (
        "coupons.yaml",
        'from: "2027-04-01T00:00:00+08:00"',
        'from: "2027-04-01T00:00:00"',
        "coupons.yaml:24:27: coupons[1].valid_between.from: expected a date-time with a UTC"
        " offset, got '2027-04-01T00:00:00' — add the offset, such as 2026-11-01T00:00:00+08:00",
    ),
    "Jinja syntax error": (
        "templates/welcome.yaml",
        "新客礼已到账：{{ coupon.name }}",
        "新客礼已到账：{{ coupon.name }",
        "templates/welcome.yaml:5:12: push.body.zh-CN:"
        " template syntax error on line 1 of the text: unexpected '}'",
    ),
    "Jinja syntax error in a block": (
        "templates/cart-coupon.yaml",
        "items ({{ cart.total | money }})",
        "items ({{ cart.total | money }))",
        "templates/cart-coupon.yaml:23:9: email.text.en:"
        " template syntax error on line 2 of the text: unexpected '}'",
    ),
    "missing locale": (
        "templates/cart-reminder.yaml",
        '    en: "{{ member.first_name }}, {{ cart.item_count }} items'
        ' ({{ cart.total | money }}) are waiting in your cart."\n',
        "",
        "templates/cart-reminder.yaml:4:3: push.body: no text for locale 'en'"
        " — every text needs each program locale: zh-CN, en",
    ),
    "unknown template attribute": (
        "templates/win-back.yaml",
        "{{ member.days_since_last_order }} 天了",
        "{{ member.days_since_last_ordr }} 天了",
        "templates/win-back.yaml:10:12: email.text.zh-CN: member has no 'days_since_last_ordr'"
        " — did you mean 'days_since_last_order'?",
    ),
    "id is not the file name": (
        "campaigns/birthday.yaml",
        "id: birthday",
        "id: birthday-tea",
        "campaigns/birthday.yaml:1:5: id: id 'birthday-tea' does not match the file name"
        " 'birthday.yaml' — set id: birthday, or rename the file to birthday-tea.yaml",
    ),
    "boost of a missing rule": (
        "program.yaml",
        "boosts: purchase ",
        "boosts: purchases ",
        "program.yaml:43:15: points.earn[1].boosts: boosts names no purchase or fixed earn rule:"
        " 'purchases' — did you mean 'purchase'?",
    ),
    "missing tier": (
        "coupons.yaml",
        "tiers: [oolong, puer]",
        "tiers: [oolong, puers]",
        "coupons.yaml:56:23: coupons[5].eligibility.tiers[1]: no tier 'puers'"
        " — did you mean 'puer'?",
    ),
    "missing template": (
        "campaigns/points-expiring.yaml",
        "template: points-expiring}",
        "template: points-expire}",
        "campaigns/points-expiring.yaml:8:46: steps[0].send.template:"
        " no template 'points-expire' in templates/ — did you mean 'points-expiring'?",
    ),
    "referrer outside a referral campaign": (
        "campaigns/birthday.yaml",
        "{channel: [push, sms], template: birthday}",
        "{member: referrer, channel: [push, sms], template: birthday}",
        "campaigns/birthday.yaml:8:20: steps[1].send.member: member: referrer exists only in"
        " referral_qualified campaigns — remove member: to address the member in the journey",
    ),
    "duplicate key": (
        "program.yaml",
        "  currency: CNY\n",
        "  currency: CNY\n  currency: USD\n",
        "program.yaml:5:3: YAML: found duplicate key 'currency' with value 'USD'"
        " (original value: 'CNY') — keep one of them",
    ),
}


@pytest.mark.parametrize(("file", "old", "new", "expected"), MISTAKES.values(), ids=MISTAKES)
def test_a_mistake_is_reported_at_its_file_line_and_field(
    tmp_path: Path, file: str, old: str, new: str, expected: str
) -> None:
    program = _copy(tmp_path)
    _edit(program, file, old, new)

    issues = check_program(program)

    assert [str(issue) for issue in issues] == [expected]
    assert issues[0].file == file
    assert has_errors(issues)


def test_issues_from_every_file_are_collected_in_one_run(tmp_path: Path) -> None:
    # Each of these is wrong within its own file, so none hides another; a cross-file check
    # (a missing coupon) is skipped when the file it needs is itself broken.
    names = [
        "unknown field",
        "wrong type",
        "CEL syntax error",
        "unknown CEL variable",
        "bad duration",
        "bad cron",
        "naive datetime",
        "Jinja syntax error",
        "Jinja syntax error in a block",
        "id is not the file name",
    ]
    program = _copy(tmp_path)
    for name in names:
        _edit(program, *MISTAKES[name][:3])

    issues = check_program(program)

    assert sorted(str(issue) for issue in issues) == sorted(MISTAKES[name][3] for name in names)
    assert [issue.sort_key for issue in issues] == sorted(issue.sort_key for issue in issues)


@pytest.mark.parametrize("file", ["program.yaml", "coupons.yaml"])
def test_a_missing_required_file_is_an_issue_naming_it(tmp_path: Path, file: str) -> None:
    program = _copy(tmp_path)
    (program / file).unlink()

    issues = [issue for issue in check_program(program) if issue.file == file]

    assert [(issue.line, issue.message) for issue in issues] == [(None, "file not found")]


def test_an_issue_renders_as_file_line_column_path_message_and_hint() -> None:
    issue = ProgramIssue(
        file="coupons.yaml",
        line=14,
        column=7,
        path="coupons[2].eligibility.min_totl",
        message="unknown field",
        hint="did you mean 'min_total'?",
    )

    assert str(issue) == (
        "coupons.yaml:14:7: coupons[2].eligibility.min_totl: unknown field"
        " — did you mean 'min_total'?"
    )


def test_warnings_do_not_fail_the_check(tmp_path: Path) -> None:
    program = _copy(tmp_path)
    _edit(
        program,
        "program.yaml",
        "  locales: [zh-CN, en] ",
        "  locales: [zh-CN, en, ja] ",
    )
    for template in (program / "templates").glob("*.yaml"):
        template.unlink()  # every template would lack 'ja'
    for campaign in (program / "campaigns").glob("*.yaml"):
        campaign.unlink()

    issues = check_program(program)

    assert {issue.severity for issue in issues} == {"warning"}
    assert not has_errors(issues)
    assert str(issues[0]) == (
        "coupons.yaml:6:5: coupons[0].name: no name for locale 'ja'"
        " — members with that locale see the default locale's name"
    )
