"""The contract's scenario runs its campaigns: replayed, then ticked to 2026-11-22 12:00 +08:00,
the outbox holds exactly these messages, line by line (issue 9, "Done when").

The scenario delivers some registrations late (Carol's of 2026-10-20 arrives after events of
November): their onboarding starts at the registration time, and its first messages go out at the
next release after the late event arrived, since quiet hours had deferred them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_shared_examples import run

from core.db import dispose_engines
from core.runtime import set_runtime

NOW = ["--now", "2026-11-22T12:00:00+08:00"]
UNTIL = "2026-11-22T12:00:00+08:00"

# (sent_at in UTC, member, campaign, template, channel) in time order, without the cart journeys
# (their variant is drawn per member; see test_carol_gets_her_variants_messages). Messages a late
# event released together (Carol's, Dave's) share their minute.
EXPECTED = [
    ("2025-12-01T02:00", "m-alice", "welcome-onboarding", "welcome", "email"),
    ("2025-12-04T02:00", "m-alice", "welcome-onboarding", "welcome-reminder", "push"),
    ("2025-12-07T02:00", "m-alice", "welcome-onboarding", "welcome-last-chance", "sms"),
    ("2026-01-17T02:00", "m-alice", "referral-invite", "referral-invite", "push"),
    ("2026-04-04T02:00", "m-alice", "referral-invite", "referral-invite", "push"),
    ("2026-07-02T03:00", "m-alice", "win-back", "win-back", "email"),
    ("2026-07-07T03:00", "m-alice", "win-back", "win-back-last-call", "sms"),
    ("2026-07-18T01:15", "m-alice", "tier-upgrade", "tier-upgraded", "push"),
    ("2026-07-18T02:00", "m-alice", "referral-invite", "referral-invite", "push"),
    ("2026-11-02T02:00", "m-alice", "points-expiring", "points-expiring", "push"),
    ("2026-11-07T02:00", "m-alice", "referral-invite", "referral-invite", "push"),
    ("2026-11-06T03:00", "m-bob", "welcome-onboarding", "welcome", "email"),
    ("2026-11-08T02:05", "m-carol", "welcome-onboarding", "welcome", "email"),
    ("2026-11-08T02:05", "m-carol", "welcome-onboarding", "welcome-reminder", "push"),
    ("2026-11-11T02:05", "m-carol", "welcome-onboarding", "welcome-last-chance", "sms"),
    ("2026-11-14T02:00", "m-bob", "referral-invite", "referral-invite", "push"),
    ("2026-11-14T16:30", "m-alice", "referral-reward", "referral-rewarded", "push"),
    ("2026-11-14T16:30", "m-bob", "referral-reward", "referral-gift", "push"),
    ("2026-11-15T01:00", "m-alice", "birthday", "birthday", "push"),
    ("2026-11-20T05:00", "m-dave", "welcome-onboarding", "welcome", "email"),
    ("2026-11-20T05:00", "m-dave", "welcome-onboarding", "welcome-reminder", "push"),
    ("2026-11-02T01:00", "m-erin", "welcome-onboarding", "welcome", "push"),
    ("2026-11-21T02:00", "m-dave", "referral-invite", "referral-invite", "push"),
    ("2026-11-21T02:00", "m-erin", "referral-invite", "referral-invite", "push"),
]
# Carol's cart (420.00) is updated 2026-11-20 13:00 +08:00 and idle from 14:00 (idle_for 1h).
CAROL_IDLE = datetime.fromisoformat("2026-11-20T14:00:00+08:00")
CAROL_EXPECTED = {
    "holdout": [],
    "reminder-first": [
        (CAROL_IDLE, "cart-reminder", "push"),
        (CAROL_IDLE + timedelta(hours=23), "cart-coupon", "sms"),
    ],
    "coupon-first": [(CAROL_IDLE, "cart-coupon", "push")],
}
DAVE_PAID = datetime.fromisoformat("2026-11-20T15:30:00+08:00")


@pytest.fixture(scope="module")
def ran(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The scenario replayed and ticked once for every test of this module (it takes seconds)."""
    folder = tmp_path_factory.mktemp("journeys")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOYALTY_DATABASE_URL", f"sqlite:///{folder / 'loyalty.db'}")
        patch.delenv("LOYALTY_REDIS_URL", raising=False)
        patch.setenv("LOYALTY_PROGRAM_DIR", str(shared / "program"))
        patch.chdir(folder)
        scenario = str(shared / "events" / "scenario.jsonl")
        code, _, err = run(*NOW, "events", "ingest", scenario, "--replay", "--json")
        assert code == 0, err
        code, _, err = run(*NOW, "tick", "--until", UNTIL)
        assert code == 0, err
        set_runtime(None)
        dispose_engines()
        yield folder


@pytest.fixture
def cli(ran: Path, monkeypatch: pytest.MonkeyPatch, shared: Path) -> Path:
    monkeypatch.setenv("LOYALTY_DATABASE_URL", f"sqlite:///{ran / 'loyalty.db'}")
    monkeypatch.delenv("LOYALTY_REDIS_URL", raising=False)
    monkeypatch.setenv("LOYALTY_PROGRAM_DIR", str(shared / "program"))
    monkeypatch.chdir(ran)
    return ran


def run_scenario(cli: Path, shared: Path) -> list[dict]:
    lines = (cli / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def arm_of(cli: Path, campaign: str, member: str) -> str | None:
    with sqlite3.connect(cli / "loyalty.db") as db:
        row = db.execute(
            "SELECT arm FROM campaign_journeys WHERE campaign_id = ? AND member_id = ?",
            (campaign, member),
        ).fetchone()
    return row[0] if row else None


def test_the_outbox_holds_each_journeys_messages_line_by_line(cli: Path, shared: Path) -> None:
    outbox = run_scenario(cli, shared)

    lines = [
        (m["sent_at"][:16], m["member_id"], m.get("campaign_id"), m["template"], m["channel"])
        for m in outbox
        if m.get("campaign_id") != "cart-abandonment"
    ]

    assert sorted(lines) == sorted(EXPECTED)
    assert len({m["message_id"] for m in outbox}) == len(outbox)


def test_carol_gets_her_variants_messages_at_the_right_times(cli: Path, shared: Path) -> None:
    outbox = run_scenario(cli, shared)
    arm = arm_of(cli, "cart-abandonment", "m-carol")

    got = [
        (datetime.fromisoformat(m["sent_at"]), m["template"], m["channel"])
        for m in outbox
        if m["member_id"] == "m-carol" and m.get("campaign_id") == "cart-abandonment"
    ]

    assert arm in CAROL_EXPECTED
    assert got == CAROL_EXPECTED[arm]


def test_dave_gets_nothing_from_the_cart_journey_after_he_pays(cli: Path, shared: Path) -> None:
    outbox = run_scenario(cli, shared)

    after = [
        m
        for m in outbox
        if m["member_id"] == "m-dave"
        and m.get("campaign_id") == "cart-abandonment"
        and datetime.fromisoformat(m["sent_at"]) >= DAVE_PAID
    ]
    with sqlite3.connect(cli / "loyalty.db") as db:
        status, reason = db.execute(
            "SELECT status, reason FROM campaign_journeys "
            "WHERE campaign_id = 'cart-abandonment' AND member_id = 'm-dave'"
        ).fetchone()

    assert after == []
    assert (status, reason) in {("exited", "exit_on:order.paid"), ("completed", "holdout")}


def test_erin_never_receives_sms_or_email(cli: Path, shared: Path) -> None:
    outbox = run_scenario(cli, shared)

    assert {m["channel"] for m in outbox if m["member_id"] == "m-erin"} == {"push"}


def test_the_referral_settles_then_alice_and_bob_are_rewarded(cli: Path, shared: Path) -> None:
    outbox = run_scenario(cli, shared)
    code, out, _ = run(*NOW, "members", "show", "m-bob", "--json")
    bob = json.loads(out)

    rewards = [m for m in outbox if m.get("campaign_id") == "referral-reward"]
    alice = next(m for m in rewards if m["member_id"] == "m-alice")

    # Bob's first order (159.00, 2026-11-07 19:00 +08:00) settles 7 days later.
    assert all(m["sent_at"] >= "2026-11-14T11:00" for m in rewards)
    assert {m["member_id"] for m in rewards} == {"m-alice", "m-bob"}
    assert "500" in alice["body"] and "Bob" in alice["body"]
    assert code == 0 and "referral-thanks-30" in {c["coupon_id"] for c in bob["coupons"]}
