"""The coupons commands as users run them: JSON shapes, --now, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app

runner = CliRunner()
SPRING_HARVEST = "2027-04-05T12:00:00+08:00"


@pytest.fixture
def env(cli_env: Path, examples: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Lin in the Tea House program without its campaigns: her wallet holds only what a test
    issues (the onboarding journey would give her its welcome coupon)."""
    tmp_path = cli_env
    program = tmp_path / "program"
    shutil.copytree(examples / "program", program)
    for campaign in (program / "campaigns").glob("*.yaml"):
        campaign.unlink()
    monkeypatch.setenv("LOYALTY_PROGRAM_DIR", str(program))
    lin = {
        "id": "evt-1",
        "type": "member.registered",
        "occurred_at": "2026-01-01T10:00:00+08:00",
        "member_id": "m-lin",
        "data": {"first_name": "林", "locale": "zh-CN"},
    }
    (tmp_path / "lin.jsonl").write_text(json.dumps(lin) + "\n")
    ingested = runner.invoke(app, ["--now", SPRING_HARVEST, "events", "ingest", "lin.jsonl"])
    assert ingested.exit_code == 0, ingested.output
    return tmp_path


def run(*args: str, now: str = SPRING_HARVEST) -> object:
    return runner.invoke(app, ["--now", now, *args])


def test_issue_prints_the_code_and_its_expiry(env: Path) -> None:
    result = run("coupons", "issue", "free-shipping", "m-lin", "--json")

    assert result.exit_code == 0, result.output
    issued = json.loads(result.stdout)
    assert issued["coupon_id"] == "free-shipping" and issued["status"] == "issued"
    assert issued["expires_at"] == "2027-05-05T04:00:00+00:00"  # 30 days after --now


def test_issuing_an_unknown_coupon_is_a_user_error(env: Path) -> None:
    result = run("coupons", "issue", "free-shiping", "m-lin")

    assert result.exit_code == 1
    assert "no coupon by the id of 'free-shiping'" in result.stderr


def test_eligible_lists_the_wallet_with_reasons_and_the_best_combination(env: Path) -> None:
    free = json.loads(run("coupons", "issue", "free-shipping", "m-lin", "--json").stdout)
    run("coupons", "issue", "spring-harvest-ladder", "m-lin")
    (env / "cart.json").write_text(
        json.dumps(
            {
                "items": [
                    {"sku": "LJ-1", "category": "tea", "price": "150.00", "qty": 1},
                    {"sku": "G-1", "category": "gift_card", "price": "500.00", "qty": 1},
                ]
            }
        )
    )

    result = run("coupons", "eligible", "m-lin", "--cart", "cart.json", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    by_coupon = {c["coupon_id"]: c for c in report["coupons"]}
    assert set(by_coupon["free-shipping"]) >= {
        "coupon_id",
        "code",
        "eligible",
        "discount",
        "reasons",
    }
    assert by_coupon["free-shipping"]["eligible"] is True
    assert by_coupon["spring-harvest-ladder"]["eligible"] is False
    assert "礼品卡不参与优惠" in by_coupon["spring-harvest-ladder"]["reasons"]  # Lin reads Chinese
    assert report["best"] == {"codes": [free["code"]], "discount": "0.00", "free_shipping": True}


def test_eligible_without_a_cart_file_exits_1(env: Path) -> None:
    result = run("coupons", "eligible", "m-lin", "--cart", "missing.json")

    assert result.exit_code == 1
    assert "missing.json: no such file" in result.stderr


def test_eligible_for_an_unknown_member_exits_1(env: Path) -> None:
    (env / "cart.json").write_text('{"items": []}')

    result = run("coupons", "eligible", "m-nobody", "--cart", "cart.json")

    assert result.exit_code == 1
    assert "no member by the id of 'm-nobody'" in result.stderr


def test_generate_makes_that_many_distinct_codes(env: Path) -> None:
    result = run("coupons", "generate", "free-shipping", "300", "--json")

    codes = json.loads(result.stdout)["codes"]
    assert result.exit_code == 0 and len(set(codes)) == 300


def test_members_show_has_the_wallet(env: Path) -> None:
    issued = json.loads(run("coupons", "issue", "tea-day-ninety", "m-lin", "--json").stdout)

    later = run("members", "show", "m-lin", "--json", now="2027-04-07T12:00:00+08:00")

    assert later.exit_code == 0, later.output
    [coupon] = json.loads(later.stdout)["coupons"]
    assert {k: coupon[k] for k in ("coupon_id", "code", "status")} == {
        "coupon_id": "tea-day-ninety",
        "code": issued["code"],
        "status": "expired",  # valid for one day
    }
    assert coupon["expires_at"] == "2027-04-06T04:00:00+00:00"


def test_expire_runs_the_daily_job_now(env: Path) -> None:
    run("coupons", "issue", "tea-day-ninety", "m-lin")

    result = run("coupons", "expire", "--json", now="2027-04-07T00:05:00+08:00")

    assert json.loads(result.stdout) == {"released": 0, "expired": 1}
