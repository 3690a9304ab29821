"""``campaigns list|show|pause|resume|preview|dry-run``, the journeys in ``members show`` and the
demo's journeys part, run as a marketer runs them on the Tea House example."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from rich.console import Console
from typer.testing import CliRunner, Result

import worker
from campaigns.assignment import version_of
from campaigns.views import member_section, print_demo_summary
from core.broker import drain
from core.cli import app
from core.clock import FixedClock, using_clock
from core.demo import summary_sections
from core.events.intake import Intake, ingest_lines
from core.members import member_sections
from core.runtime import Runtime, set_runtime
from core.settings import Settings

runner = CliRunner()
Play = Callable[..., Runtime]


def at(text: str) -> datetime:
    """A Shanghai time: ``at("2026-11-18 15:30")``."""
    return datetime.fromisoformat(text.replace(" ", "T") + "+08:00")


@pytest.fixture
def play(cli_env: Path, examples: Path) -> Play:
    """Replay the example scenario's events from ``since`` up to ``until``, each at its own
    time with the work it causes run after it (no scheduled job fires: ``tick`` does that)."""
    scenario = (examples / "events" / "scenario.jsonl").read_text(encoding="utf-8").splitlines()

    def run(until: str, *, since: str = "2026-09-15 00:00") -> Runtime:
        runtime = Runtime(settings=Settings())
        set_runtime(runtime)
        worker.setup(runtime.settings)
        timed = sorted((datetime.fromisoformat(json.loads(x)["occurred_at"]), x) for x in scenario)
        for moment, line in timed:
            if at(since) <= moment <= at(until):
                with using_clock(FixedClock(moment)):
                    intake = Intake.for_runtime(runtime, source="scenario", program=runtime.program)
                    ingest_lines([line], intake)
                    drain()
        set_runtime(None)
        return runtime

    return run


def cli(now: str, *args: str) -> Result:
    """Run a command at the engine clock ``now`` (Shanghai time)."""
    return runner.invoke(app, ["--now", at(now).isoformat(), *args])


def cli_json(now: str, *args: str) -> Any:
    """Run a command with ``--json`` at ``now``; it must exit 0. Returns the parsed output."""
    result = cli(now, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def tick(start: str, until: str) -> None:
    result = cli(until, "tick", "--from", at(start).isoformat(), "--until", at(until).isoformat())
    assert result.exit_code == 0, result.output


# Sam (London) left cups in his cart at 13:00 on 18 November; the cart scan takes it at 15:00.
def sams_cart_is_taken(play: Play) -> Runtime:
    runtime = play("2026-11-18 14:50")
    tick("2026-11-18 14:50", "2026-11-18 15:30")
    return runtime


def test_list_shows_each_campaign_with_its_status_and_todays_entries(play: Play) -> None:
    sams_cart_is_taken(play)

    listed = cli_json("2026-11-18 20:00", "campaigns", "list")
    text = cli("2026-11-18 20:00", "campaigns", "list")
    tomorrow = cli_json("2026-11-19 00:30", "campaigns", "list")

    rows = {row["campaign_id"]: row for row in listed}
    assert len(rows) == 8 and {row["status"] for row in rows.values()} == {"active"}
    cart = rows["cart-abandonment"]
    assert (cart["kind"], cart["trigger"], cart["status_source"]) == (
        "marketing", "cart_abandoned", "file",
    )  # fmt: skip
    assert (cart["journeys_active"], cart["entered_today"]) == (1, 1)
    assert re.search(r"\ncart-abandonment +marketing +cart_abandoned +active +1 +1\n", text.stdout)
    assert "\n  Tea left in the cart\n" in text.stdout
    assert {r["campaign_id"]: r["entered_today"] for r in tomorrow}["cart-abandonment"] == 0


def test_show_gives_the_definition_in_words_and_the_journeys_by_arm(play: Play) -> None:
    runtime = sams_cart_is_taken(play)

    shown = cli_json("2026-11-18 20:00", "campaigns", "show", "cart-abandonment")
    text = cli("2026-11-18 20:00", "campaigns", "show", "cart-abandonment")

    view = shown
    assert view["version"] == version_of(runtime.program.campaigns["cart-abandonment"])
    assert view["trigger"] == {
        "kind": "cart_abandoned", "text": "cart abandoned: idle 2h, total at least 80",
    }  # fmt: skip
    assert [s["step_id"] for s in view["steps"]["coupon-now"]] == [
        "issue_coupon:cart-steep-12", "send:cart-coupon",
    ]  # fmt: skip
    assert view["steps"]["gentle-reminder"][3]["text"] == "send sms or email: cart-coupon"
    assert view["experiment"] == {
        "holdout": "0.15", "variants": {"gentle-reminder": 60, "coupon-now": 40},
    }  # fmt: skip
    assert (view["exit_on"], view["reentry_after"]) == (["order.paid"], "2w")
    assert view["goal"] == {"event": "order.paid", "within": "4d"}
    assert view["journeys"]["by_arm"] == {"gentle-reminder": {"total": 1, "active": 1}}
    assert "id send:cart-reminder" in text.stdout and "re-entry after 2w" in text.stdout


def test_a_paused_campaign_holds_its_journeys_until_resumed_then_they_run_at_once(
    play: Play,
) -> None:
    play("2026-09-15 09:00")  # Sam registers at 08:00: welcome now, a reminder after 5 days
    paused = cli_json("2026-09-16 10:00", "campaigns", "pause", "welcome-onboarding",
                 "--note", "the coupon is wrong")  # fmt: skip
    tick("2026-09-16 10:00", "2026-09-21 10:00")
    held = cli_json("2026-09-21 10:00", "members", "show", "m-sam")
    listed = cli_json("2026-09-21 10:00", "campaigns", "list")

    resumed = cli_json("2026-09-21 10:00", "campaigns", "resume", "welcome-onboarding")

    assert paused | {"changed_at": None} == {
        "campaign_id": "welcome-onboarding", "previous": "active", "status": "paused",
        "changed_at": None, "note": "the coupon is wrong", "journeys_due": 0,
    }  # fmt: skip
    [journey] = held["journeys"]
    assert journey["next_step"] == "send:welcome-reminder"  # held past its 20 September
    row = {r["campaign_id"]: r for r in listed}["welcome-onboarding"]
    assert (row["status"], row["status_source"], row["status_note"]) == (
        "paused", "override", "the coupon is wrong",
    )  # fmt: skip
    assert (resumed["status"], resumed["journeys_due"]) == ("active", 1)
    [journey] = cli_json("2026-09-21 10:00", "members", "show", "m-sam")["journeys"]
    assert [s["step_id"] for s in journey["steps"]][-2:] == ["send:welcome-reminder", "wait:1w"]
    assert journey["next_step"] == "send:welcome-last-chance"


def test_resume_with_redis_leaves_the_held_journeys_to_the_workers(
    play: Play, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    play("2026-09-15 09:00")
    cli("2026-09-16 10:00", "campaigns", "pause", "welcome-onboarding")
    tick("2026-09-16 10:00", "2026-09-21 10:00")
    [held] = cli_json("2026-09-21 10:00", "members", "show", "m-sam")["journeys"]
    monkeypatch.setenv("LOYALTY_REDIS_URL", redis_url)

    resumed = cli("2026-09-21 10:00", "campaigns", "resume", "welcome-onboarding")

    assert resumed.exit_code == 0, resumed.output
    assert "1 held journey(s) due: queued for the workers" in resumed.stdout
    client = redis.Redis.from_url(redis_url)
    queued = [json.loads(m) for m in client.hvals("dramatiq:campaigns.msgs")]
    client.close()
    assert [held["journey_id"]] in [m["args"][0] for m in queued if m["actor_name"] == "advance"]


@pytest.mark.parametrize(
    "command",
    [
        ("show", "cart-abandonmnt"),
        ("pause", "cart-abandonmnt"),
        ("resume", "cart-abandonmnt"),
        ("preview", "cart-abandonmnt", "--member", "m-sam"),
        ("dry-run", "cart-abandonmnt"),
    ],
)
def test_an_unknown_campaign_exits_1_and_suggests_the_id_meant(
    play: Play, command: tuple[str, ...]
) -> None:
    play("2026-09-15 09:00")

    result = cli("2026-09-16 10:00", "campaigns", *command)

    assert result.exit_code == 1
    assert "no campaign by the id of 'cart-abandonmnt'" in result.stderr
    assert "did you mean 'cart-abandonment'?" in result.stderr


def test_preview_prints_each_message_and_when_it_would_go(play: Play) -> None:
    play("2026-11-18 13:30")

    text = cli("2026-11-18 13:30", "campaigns", "preview", "cart-abandonment", "--member", "m-sam")
    data = cli_json("2026-11-18 13:30", "campaigns", "preview", "cart-abandonment",
               "--member", "m-sam", "--variant", "coupon-now")  # fmt: skip
    unknown = cli("2026-11-18 13:30", "campaigns", "preview", "cart-abandonment",
                  "--member", "m-nobody")  # fmt: skip

    assert text.exit_code == 0, text.output
    assert "title: Your tea is still in the cart" in text.stdout
    assert "2026-11-18 16:30 after quiet hours" in text.stdout
    assert "subject: Sam, we kept your tea for you" in text.stdout
    [message] = data["messages"]
    assert (data["arm"], data["forced_arm"], message["channel"]) == ("coupon-now", True, "push")
    assert message["send_at"] == "2026-11-18T08:30:00+00:00"
    assert message["send_reason"] == "quiet_hours"
    assert unknown.exit_code == 1 and "no member by the id of 'm-nobody'" in unknown.stderr


def test_dry_run_prints_who_would_enter_and_what_they_would_get(play: Play) -> None:
    play("2026-11-18 14:50")

    cart = cli("2026-11-18 15:30", "campaigns", "dry-run", "cart-abandonment")
    data = cli_json("2026-11-18 15:30", "campaigns", "dry-run", "cart-abandonment")
    onboarding = cli("2026-11-18 15:30", "campaigns", "dry-run", "welcome-onboarding")

    assert cart.exit_code == 0, cart.output
    assert "1 would enter: gentle-reminder 1" in cart.stdout
    assert "send:cart-reminder push cart-reminder: Your tea is still in the cart" in cart.stdout
    assert "nothing was sent or written" in cart.stdout
    assert (data["entering"], data["arms"], data["left_out"]) == (1, {"gentle-reminder": 1}, [])
    assert "enters members only as events arrive" in onboarding.stdout
    assert (
        cli_json("2026-11-18 15:30", "campaigns", "show", "cart-abandonment")["journeys"]["total"]
        == 0
    )  # the dry run left no journey behind


def test_members_show_lists_the_journeys_with_each_sends_message_status(play: Play) -> None:
    sams_cart_is_taken(play)

    data = cli_json("2026-11-18 20:00", "members", "show", "m-sam")
    text = cli("2026-11-18 20:00", "members", "show", "m-sam")

    cart, welcome = data["journeys"]  # newest first
    assert (cart["campaign_id"], cart["arm"], cart["status"]) == (
        "cart-abandonment", "gentle-reminder", "active",
    )  # fmt: skip
    assert (cart["next_step"], cart["next_run_at"]) == (
        "issue_coupon:cart-steep-12", "2026-11-19T07:00:00+00:00",
    )  # fmt: skip
    reminder = cart["steps"][0]
    assert reminder["step_id"] == "send:cart-reminder"
    # 15:00 in Shanghai is 07:00 in London: inside his quiet hours, the push waits.
    assert reminder["message"]["status"] == "deferred"
    assert reminder["message"]["reason"] == "quiet_hours"
    assert welcome["campaign_id"] == "welcome-onboarding"
    assert "cart-abandonment gentle-reminder: active" in text.stdout
    assert "send:cart-reminder done → push deferred (quiet_hours)" in text.stdout


def test_the_demo_summary_counts_journeys_by_outcome_and_their_messages(play: Play) -> None:
    runtime = play("2026-11-19 00:00")
    console = Console(record=True, width=300)

    print_demo_summary(runtime, console)

    assert console.export_text().splitlines() == [
        "journeys",
        "  welcome-onboarding entered 4: active 1, exited 3 (exit_on:order.paid 3); "
        "messages sent 3 (email 2, push 1), deferred 1 (email 1)",  # Sam's, in his quiet hours
        "  no journeys: birthday, cart-abandonment, points-expiring, referral-invite, "
        "referral-reward, tier-upgrade, win-back",
    ]
    assert print_demo_summary in summary_sections and member_section in member_sections
