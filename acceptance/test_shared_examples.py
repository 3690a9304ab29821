"""The contract's example program and event stream work unchanged."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

from typer.testing import CliRunner

from core.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
NOW = ["--now", "2026-11-21T00:00:00+08:00"]


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stderr, result.stderr
    return result.exit_code, result.stdout, result.stderr


def members_of(scenario: Path) -> list[str]:
    lines = scenario.read_text(encoding="utf-8").splitlines()
    return sorted({json.loads(line)["member_id"] for line in lines if line.strip()})


def test_the_program_checks_clean(shared: Path) -> None:
    code, out, err = run("check", str(shared / "program"))

    assert code == 0, out + err


def test_the_repos_copy_is_the_contracts_example(shared: Path) -> None:
    """The benchmarks run examples/home-goods: it must be this example, unchanged."""
    copy = REPO / "examples" / "home-goods"
    for folder in ("program", "program/campaigns", "program/templates", "events"):
        compared = filecmp.dircmp(shared / folder, copy / folder)
        assert compared.left_only == compared.right_only == [], folder
        _, mismatch, errors = filecmp.cmpfiles(
            shared / folder, copy / folder, compared.common_files, shallow=False
        )
        assert mismatch == errors == [], f"{folder}: copy differs in {mismatch + errors}"


def test_the_stream_ingests_once_and_a_second_time_changes_nothing(cli: Path, shared: Path) -> None:
    scenario = str(shared / "events" / "scenario.jsonl")

    code, out, err = run(*NOW, "events", "ingest", scenario, "--json")
    again, out_again, _ = run(*NOW, "events", "ingest", scenario, "--json")

    assert code == 0, err
    first = json.loads(out)
    assert (first["accepted"], first["rejected"]) == (17, 0)
    assert first.get("handler_failures", 0) == 0
    assert again == 0
    assert json.loads(out_again)["accepted"] == 0


def test_the_stream_replays_through_time_and_every_member_shows(cli: Path, shared: Path) -> None:
    scenario = shared / "events" / "scenario.jsonl"

    code, out, err = run(*NOW, "events", "ingest", str(scenario), "--replay", "--json")

    assert code == 0, err
    assert json.loads(out)["rejected"] == 0
    failures, listed, _ = run(*NOW, "events", "failures", "--json")
    assert failures == 0 and json.loads(listed)["failures"] == []
    for member_id in members_of(scenario):
        shown, view, err = run(*NOW, "members", "show", member_id, "--json")
        assert shown == 0, err
        member = json.loads(view)
        assert {"member_id", "tier", "qualifying_spend", "points", "coupons"} <= set(member)
        assert {"balance", "pending", "lots"} <= set(member["points"])
