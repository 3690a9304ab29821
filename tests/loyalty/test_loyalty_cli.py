"""The loyalty commands as operators run them: --now, --json, exit 1 with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app

runner = CliRunner()
NOW = ["--now", "2026-11-21T00:00:00+08:00"]


@pytest.fixture
def env(cli_env: Path, examples: Path) -> Path:
    tmp_path = cli_env
    scenario = str(examples / "events" / "scenario.jsonl")
    result = runner.invoke(app, [*NOW, "events", "ingest", scenario, "--json"])
    # The scenario's order of a negative total (th-0018) is rejected on purpose: exit 1.
    assert result.exit_code == 1, result.output
    counts = json.loads(result.stdout)
    assert (counts["accepted"], counts["duplicate"], counts["rejected"]) == (17, 1, 1)
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*NOW, *args])
    return result.exit_code, result.stdout, result.stderr


def test_members_show_json_has_the_tier_spend_and_points_with_their_lots(env: Path) -> None:
    code, out, _ = run("members", "show", "m-lin", "--json")
    newcomer = json.loads(run("members", "show", "m-zhao", "--json")[1])

    view = json.loads(out)
    assert code == 0
    assert (view["tier"], view["qualifying_spend"]) == ("puer", "22480.00")
    assert view["next_tier"] is None  # the highest tier
    # 200 welcome + 8800 (leaf) + 12600 × 1.5 (oolong) + 1080 × 2 (puer) + 30 review + 10 share
    assert (view["points"]["balance"], view["points"]["pending"]) == (30100, 0)
    assert {"points", "remaining", "available_at", "expires_at"} <= set(view["points"]["lots"][0])
    assert view["referral_code"] == "LINTEA"
    assert newcomer["next_tier"] == {"tier": "bud", "min_spend": "3000", "needed": "2820.00"}
    assert (newcomer["points"]["balance"], newcomer["points"]["pending"]) == (200, 180)


def test_members_show_prints_the_tier_and_the_lots_for_people(env: Path) -> None:
    code, out, _ = run("members", "show", "m-lin")
    newcomer = run("members", "show", "m-zhao")[1]

    assert code == 0
    assert "tier     puer on qualifying spend 22480.00\n" in out
    assert "balance 30100, pending 0" in out
    assert "tier     leaf on qualifying spend 180.00; 2820.00 more for bud" in newcomer


def test_points_redeem_prints_the_lots_used_and_refuses_breaking_the_rules(env: Path) -> None:
    code, out, _ = run(
        "points", "redeem", "m-lin", "500", "--order", "o-new", "--total", "828.00", "--json"
    )
    refused, _, err = run("points", "redeem", "m-lin", "499", "--order", "o-2", "--total", "50")
    bad_total, _, total_err = run(
        "points", "redeem", "m-lin", "500", "--order", "o-3", "--total", "lots"
    )

    assert code == 0 and json.loads(out)["value"] == "10.00"  # 50 points = 1 CNY
    assert refused == 1 and "below the minimum of 500" in err
    assert bad_total == 2 and "is not an amount" in total_err  # a usage error, as click's


def test_points_adjust_takes_negative_points_and_needs_a_known_member(env: Path) -> None:
    taken, out, _ = run("points", "adjust", "m-mei", "-50", "--reason", "duplicate welcome")
    unknown, _, err = run("points", "adjust", "m-nobody", "10", "--reason", "typo")
    shown = json.loads(run("members", "show", "m-mei", "--json")[1])

    assert taken == 0 and "adjusted m-mei by -50" in out
    assert unknown == 1 and "no member by the id of 'm-nobody'" in err
    assert shown["points"]["balance"] == 200 - 50  # the welcome; the order's 268 are pending


def test_points_verify_and_expire_run_for_operators(env: Path) -> None:
    verified, out, _ = run("points", "verify")
    code, expired, _ = run("points", "expire", "--json")

    assert verified == 0 and "ledger ok" in out
    assert code == 0 and json.loads(expired)["lots"] == 0


def test_tiers_recalc_dry_run_shows_who_would_move(env: Path) -> None:
    later = ["--now", "2027-11-07T03:00:00+08:00"]
    dry = runner.invoke(app, [*later, "tiers", "recalc", "--dry-run", "--json"])
    real = runner.invoke(app, [*later, "tiers", "recalc"])

    report = json.loads(dry.stdout)
    assert report["counts"] == {"up": 0, "down": 0, "pending": 1, "recovered": 0}
    assert report["changes"][0]["member_id"] == "m-lin"
    assert "1 members changed: up 0, down 0, pending 1" in real.stdout


def test_a_paid_order_whose_points_cannot_be_redeemed_is_counted_and_listed(
    env: Path, tmp_path: Path
) -> None:
    order = {"id": "p-zhao-2", "type": "order.paid", "occurred_at": "2026-11-20T10:00:00+08:00",
             "member_id": "m-zhao", "data": {"order_id": "o-z2", "total": "300.00",
                                             "points_redeemed": 5000}}  # fmt: skip
    events = tmp_path / "refused.jsonl"
    events.write_text(json.dumps(order) + "\n")

    code, out, _ = run("events", "ingest", str(events))
    counts = json.loads(run("events", "ingest", str(events), "--json")[1])
    listed, shown, _ = run("points", "refused", "--member", "m-zhao")
    as_json = json.loads(run("points", "refused", "--json")[1])

    assert code == 0 and "refused points redemptions: 1 (loyalty-engine points refused)" in out
    assert counts["duplicate"] == 1 and "points_refused" not in counts  # counted once
    assert listed == 0 and "order o-z2: 5000 points not redeemed (points.insufficient)" in shown
    assert [(r["order_id"], r["reason"]) for r in as_json] == [("o-z2", "points.insufficient")]
    assert "5000 were asked for" in as_json[0]["message"]
    assert run("points", "refused", "--member", "m-lin")[1].strip() == (
        "no refused points redemptions"
    )
