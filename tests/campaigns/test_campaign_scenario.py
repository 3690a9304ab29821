"""The Tea House scenario runs its campaigns: replayed, then ticked to 2026-11-26 12:00 +08:00,
the outbox holds exactly these messages (the project's own twin of ``make acceptance``).

The stream delivers some registrations late (Sam's of 2026-09-15 after events of November): the
onboarding starts at the registration time, and what quiet hours deferred goes out when the late
event arrives, together with the steps that fell due meanwhile (one per day: the daily cap).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app
from core.db import dispose_engines
from core.runtime import set_runtime

UNTIL = "2026-11-26T12:00:00+08:00"
NOW = ["--now", UNTIL]
runner = CliRunner()

# (sent_at in UTC, member, campaign, template, channel), without the cart journey (its
# variant is drawn per member; see test_sams_cart_gets_his_variants_messages).
EXPECTED = [
    ("2026-01-05T01:30", "m-lin", "welcome-onboarding", "welcome", "email"),
    ("2026-01-10T01:30", "m-lin", "welcome-onboarding", "welcome-reminder", "push"),
    ("2026-01-17T01:30", "m-lin", "welcome-onboarding", "welcome-last-chance", "sms"),
    ("2026-01-20T12:10", "m-lin", "tier-upgrade", "tier-upgraded", "email"),
    ("2026-05-11T04:00", "m-lin", "tier-upgrade", "tier-upgraded", "email"),  # up again
    ("2026-05-15T11:30", "m-lin", "referral-invite", "referral-invite", "push"),
    ("2026-11-02T02:00", "m-lin", "birthday", "birthday", "push"),
    ("2026-11-06T11:30", "m-lin", "referral-invite", "referral-invite", "push"),
    ("2026-11-08T07:00", "m-mei", "welcome-onboarding", "welcome", "email"),
    ("2026-11-09T11:30", "m-sam", "welcome-onboarding", "welcome-reminder", "push"),
    ("2026-10-01T02:00", "m-zhao", "welcome-onboarding", "welcome", "email"),
    ("2026-11-01T01:00", "m-ivy", "welcome-onboarding", "welcome", "push"),
    ("2026-11-24T16:30", "m-lin", "referral-reward", "referral-rewarded", "push"),
    ("2026-11-24T16:30", "m-mei", "referral-reward", "referral-gift", "push"),
]
# Sam (Europe/London, no SMS consent) leaves 396.00 in his cart at 2026-11-18 05:00 UTC; it is
# idle from 07:00 (idle_for 2h), inside his quiet hours (22:00-08:30), so pushes wait to 08:30.
SAM_IDLE = datetime.fromisoformat("2026-11-18T07:00:00+00:00")
SAM_EXPECTED = {
    "holdout": [],
    "gentle-reminder": [
        (SAM_IDLE + timedelta(minutes=90), "cart-reminder", "push"),
        (SAM_IDLE + timedelta(days=1, minutes=90), "cart-coupon", "email"),
    ],
    "coupon-now": [(SAM_IDLE + timedelta(minutes=90), "cart-coupon", "push")],
}


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The scenario replayed and ticked once for the whole module (it takes seconds)."""
    from tests.conftest import EXAMPLES

    folder = tmp_path_factory.mktemp("tea-house")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOYALTY_DATABASE_URL", f"sqlite:///{folder / 'loyalty.db'}")
        patch.delenv("LOYALTY_REDIS_URL", raising=False)
        patch.setenv("LOYALTY_PROGRAM_DIR", str(EXAMPLES / "program"))
        patch.chdir(folder)
        scenario = str(EXAMPLES / "events" / "scenario.jsonl")
        replayed = runner.invoke(app, [*NOW, "events", "ingest", scenario, "--replay", "--json"])
        ticked = runner.invoke(app, [*NOW, "tick", "--until", UNTIL])
        assert json.loads(replayed.stdout)["rejected"] == 1, replayed.output  # m-ghost's order
        assert ticked.exit_code == 0, ticked.output
        set_runtime(None)
        dispose_engines()
        yield folder


def outbox(folder: Path) -> list[dict]:
    lines = (folder / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def query(folder: Path, sql: str, *params: str) -> list[tuple]:
    with sqlite3.connect(folder / "loyalty.db") as db:
        return db.execute(sql, params).fetchall()


def test_the_outbox_holds_each_journeys_messages(ran: Path) -> None:
    sent = outbox(ran)
    lines = [
        (m["sent_at"][:16], m["member_id"], m.get("campaign_id"), m["template"], m["channel"])
        for m in sent
        if m.get("campaign_id") != "cart-abandonment"
    ]

    assert sorted(lines) == sorted(EXPECTED)
    assert len({m["message_id"] for m in sent}) == len(sent)


def test_sams_cart_gets_his_variants_messages_after_quiet_hours(ran: Path) -> None:
    [(arm,)] = query(
        ran, "SELECT arm FROM campaign_journeys WHERE campaign_id = ? AND member_id = ?",
        "cart-abandonment", "m-sam",
    )  # fmt: skip

    got = [
        (datetime.fromisoformat(m["sent_at"]), m["template"], m["channel"])
        for m in outbox(ran)
        if m.get("campaign_id") == "cart-abandonment"
    ]

    assert got == SAM_EXPECTED[arm]


def test_zhao_who_paid_within_the_idle_time_never_enters_the_cart_journey(ran: Path) -> None:
    rows = query(
        ran, "SELECT member_id FROM campaign_journeys WHERE campaign_id = 'cart-abandonment'"
    )

    assert rows == [("m-sam",)]


def test_paying_ends_the_onboarding_and_nothing_follows(ran: Path) -> None:
    ended = query(
        ran,
        "SELECT member_id, status, reason FROM campaign_journeys "
        "WHERE campaign_id = 'welcome-onboarding' ORDER BY member_id",
    )

    assert ended == [
        ("m-ivy", "exited", "exit_on:order.paid"),
        ("m-lin", "completed", None),
        ("m-mei", "exited", "exit_on:order.paid"),
        ("m-sam", "completed", None),
        ("m-zhao", "exited", "exit_on:order.paid"),
    ]


def test_a_capped_or_unreachable_step_is_skipped_with_its_reason(ran: Path) -> None:
    skipped = query(
        ran,
        "SELECT member_id, template_id, reason FROM notification_messages "
        "WHERE status = 'suppressed' ORDER BY member_id, template_id",
    )

    assert skipped == [
        ("m-sam", "welcome", "frequency_cap_day"),  # released with the overdue reminder
        ("m-sam", "welcome-last-chance", "no_consent"),  # sms only; Sam has no SMS consent
        ("m-zhao", "welcome-reminder", "no_consent"),  # push only; Zhao allows no push
    ]


def test_the_referral_rewards_lin_and_mei_once_it_settles(ran: Path) -> None:
    runner_env = {"LOYALTY_DATABASE_URL": f"sqlite:///{ran / 'loyalty.db'}"}
    shown = runner.invoke(app, [*NOW, "members", "show", "m-mei", "--json"], env=runner_env)

    lin = next(m for m in outbox(ran) if m["template"] == "referral-rewarded")
    [(points,)] = query(
        ran,
        "SELECT points FROM campaign_journey_steps WHERE kind = 'award_points' AND member_id = ?",
        "m-lin",
    )

    assert points == 800 and "800" in lin["body"] and "美" in lin["body"]
    assert shown.exit_code == 0, shown.output
    assert "friend-tea-25" in {c["coupon_id"] for c in json.loads(shown.stdout)["coupons"]}
