"""Refused coupon codes as users see them: the ingest count, `coupons refused`, `members show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from core.cli import app

runner = CliRunner()
ISSUED_AT = "2026-11-05T12:00:00+08:00"  # free-shipping lasts 30 days: until 2026-12-05 12:00
PAID_AT = "2027-01-10T10:00:00+08:00"
UNKNOWN_CODE = "K7QM-4XRT-9HPW"


def run(*args: str, now: str = PAID_AT) -> Any:
    return runner.invoke(app, ["--now", now, *args])


def write_events(path: Path, *events: dict[str, Any]) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return str(path)


def order(order_id: str, member_id: str, codes: list[str]) -> dict[str, Any]:
    return {
        "id": f"paid-{order_id}",
        "type": "order.paid",
        "occurred_at": PAID_AT,
        "member_id": member_id,
        "data": {"order_id": order_id, "total": "120.00", "coupon_codes": codes},
    }


@pytest.fixture
def ingested(cli_env: Path) -> Any:
    """Alice (zh-CN) pays with an expired code of hers, an unknown code and her email address."""
    alice = {
        "id": "reg-alice",
        "type": "member.registered",
        "occurred_at": "2026-01-01T10:00:00+08:00",
        "member_id": "m-alice",
        "data": {"first_name": "Alice", "locale": "zh-CN"},
    }
    registered = run("events", "ingest", write_events(cli_env / "a.jsonl", alice), now=ISSUED_AT)
    assert registered.exit_code == 0, registered.output
    issued = run("coupons", "issue", "free-shipping", "m-alice", "--json", now=ISSUED_AT)
    expired = json.loads(issued.stdout)["code"]
    codes = [expired, UNKNOWN_CODE, "alice@example.com"]
    orders = write_events(cli_env / "o.jsonl", order("o-1", "m-alice", codes))
    return run("events", "ingest", orders), expired


def test_ingest_prints_the_count_of_refused_codes_instead_of_a_warning_each(
    ingested: Any,
) -> None:
    result, _code = ingested

    assert result.exit_code == 0, result.output
    assert "refused coupon codes: 3 (loyalty-engine coupons refused)" in result.stdout
    assert "not redeemed" not in result.output


def test_coupons_refused_lists_each_code_with_its_reason_in_the_members_locale(
    ingested: Any,
) -> None:
    _result, expired = ingested

    listed = run("coupons", "refused", "--json")

    assert listed.exit_code == 0, listed.output
    shown = {r["code"]: r for r in json.loads(listed.stdout)}
    assert set(shown) == {expired, UNKNOWN_CODE, "a***@example.com"}
    assert shown[expired]["coupon_id"] == "free-shipping"
    assert shown[expired]["reason"] == "code.expired"
    assert shown[expired]["text"] == "已于 2026年12月5日 过期"
    assert shown[UNKNOWN_CODE]["text"] == "券码不存在"
    assert {r["order_id"] for r in shown.values()} == {"o-1"}
    assert {r["member_id"] for r in shown.values()} == {"m-alice"}
    assert {r["refused_at"] for r in shown.values()} == {"2027-01-10T02:00:00+00:00"}
    assert "alice@example.com" not in listed.stdout


def test_coupons_refused_filters_by_member_and_order_and_limits(ingested: Any) -> None:
    mine = run("coupons", "refused", "--member", "m-alice", "--order", "o-1", "--limit", "2")
    none = run("coupons", "refused", "--order", "o-2")
    too_many = run("coupons", "refused", "--limit", "100000000000000000000")

    assert mine.exit_code == 0, mine.output
    assert len(json.loads(run("coupons", "refused", "--limit", "2", "--json").stdout)) == 2
    assert "refused coupon codes" in mine.stdout and "o-1" in mine.stdout
    assert none.stdout.strip() == "no refused coupon codes"
    assert too_many.exit_code == 2


def test_members_show_has_a_refused_coupon_codes_section(ingested: Any) -> None:
    shown = run("members", "show", "m-alice", "--json")
    printed = run("members", "show", "m-alice")

    assert shown.exit_code == 0, shown.output
    refused = json.loads(shown.stdout)["refused_coupon_codes"]
    assert refused["count"] == 3
    assert {r["reason"] for r in refused["newest"]} == {"code.expired", "code.unknown"}
    assert "refused coupon codes" in printed.stdout
    assert "alice@example.com" not in shown.stdout + printed.stdout


def test_members_show_says_none_were_refused(cli_env: Path) -> None:
    bob = {
        "id": "reg-bob",
        "type": "member.registered",
        "occurred_at": "2026-01-01T10:00:00+08:00",
        "member_id": "m-bob",
        "data": {"first_name": "Bob"},
    }
    run("events", "ingest", write_events(cli_env / "b.jsonl", bob))

    printed = run("members", "show", "m-bob")

    assert printed.exit_code == 0, printed.output
    assert "refused coupon codes  none" in printed.stdout
