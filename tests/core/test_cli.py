"""The command line as users run it: exit codes, messages, JSON output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, db_url: str, engine: object, tmp_path: Path) -> Path:
    monkeypatch.setenv("LOYALTY_DATABASE_URL", db_url)
    monkeypatch.delenv("LOYALTY_REDIS_URL", raising=False)
    # No program configured: intake stores and projects with --no-program (a configured
    # directory that is missing is a user error, see test_loyalty_handler_failures).
    monkeypatch.delenv("LOYALTY_PROGRAM_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_ingesting_the_example_scenario_reports_17_accepted_and_1_duplicate(
    env: Path, examples: Path
) -> None:
    scenario = str(examples / "events" / "scenario.jsonl")

    first = runner.invoke(app, ["events", "ingest", scenario, "--json", "--no-program"])
    second = runner.invoke(app, ["events", "ingest", scenario, "--json", "--no-program"])

    assert first.exit_code == 1, first.output  # th-0018 is invalid on purpose
    counts = json.loads(first.stdout)
    # With no program, each event waits for the handlers of its type (events retry --all).
    assert counts == {"accepted": 17, "duplicate": 1, "rejected": 1, "waiting": counts["waiting"]}
    assert counts["waiting"] > 17
    assert json.loads(second.stdout) == {"accepted": 0, "duplicate": 18, "rejected": 1}


def test_a_file_with_a_bad_line_exits_1_and_the_line_is_listed_as_rejected(env: Path) -> None:
    good = (
        '{"id": "e-1", "type": "content.shared", "occurred_at": "2026-11-01T10:00:00Z", '
        '"member_id": "m-1", "data": {"channel": "wechat"}}'
    )
    (env / "events.jsonl").write_text(good + "\n" + "{oops\n")

    result = runner.invoke(app, ["events", "ingest", "events.jsonl", "--no-program"])
    listed = runner.invoke(app, ["events", "rejected", "--json"])

    assert result.exit_code == 1
    assert "accepted 1, duplicate 0, rejected 1" in result.stdout
    assert "line 2" in result.stderr and "not valid JSON" in result.stderr
    [row] = json.loads(listed.stdout)
    assert (row["line"], row["raw"], row["source"]) == (2, "{oops", "events.jsonl")


def test_events_can_be_piped_in_on_stdin(env: Path, examples: Path) -> None:
    scenario = (examples / "events" / "scenario.jsonl").read_text()

    result = runner.invoke(app, ["events", "ingest", "-", "--json", "--no-program"], input=scenario)

    assert json.loads(result.stdout)["accepted"] == 17


def test_a_missing_file_is_a_user_error_naming_it(env: Path) -> None:
    result = runner.invoke(app, ["events", "ingest", "nowhere.jsonl", "--no-program"])

    assert result.exit_code == 1
    assert "nowhere.jsonl: no such file" in result.stderr


@pytest.mark.parametrize(
    ("now", "message"),
    [("2026-11-20T10:00:00", "has no time zone"), ("next friday", "not an ISO-8601 time")],
)
def test_a_bad_now_is_a_usage_error_with_the_fix(env: Path, now: str, message: str) -> None:
    result = runner.invoke(app, ["--now", now, "events", "rejected"])

    assert result.exit_code == 2
    assert message in result.output


def test_check_passes_the_example_program(examples: Path) -> None:
    result = runner.invoke(app, ["check", str(examples / "program")])

    assert result.exit_code == 0, result.output


def test_check_exits_1_naming_file_and_line_of_an_unknown_field(
    examples: Path, tmp_path: Path
) -> None:
    program = tmp_path / "program"
    shutil.copytree(examples / "program", program)
    coupons = program / "coupons.yaml"
    coupons.write_text(coupons.read_text().replace("min_order_total: 120", "min_order_totl: 120"))

    result = runner.invoke(app, ["check", str(program)])

    assert result.exit_code == 1
    line = next(
        n for n, text in enumerate(coupons.read_text().splitlines(), 1) if "min_order_totl" in text
    )
    assert f"coupons.yaml:{line}:" in result.stderr
    assert "did you mean 'min_order_total'" in result.stderr


def test_schema_prints_one_schema_per_file_kind() -> None:
    result = runner.invoke(app, ["schema"])

    assert set(json.loads(result.stdout)) == {"program", "coupons", "campaign", "template"}


def test_tick_without_a_program_is_a_user_error_with_the_fix(env: Path) -> None:
    result = runner.invoke(app, ["tick", "--until", "2026-11-20T00:00:00+08:00"])

    assert result.exit_code == 1
    assert "--program" in result.stderr


def test_tick_with_the_example_program_remembers_how_far_it_ran(env: Path, examples: Path) -> None:
    program = ["--program", str(examples / "program")]

    first = runner.invoke(
        app,
        [
            *program,
            "tick",
            "--from",
            "2026-11-19T00:00:00+08:00",
            "--until",
            "2026-11-20T00:00:00+08:00",
            "--json",
        ],
    )
    backwards = runner.invoke(app, [*program, "tick", "--until", "2026-11-18T00:00:00+08:00"])

    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["until"].startswith("2026-11-19T16:00:00")
    assert backwards.exit_code == 1
    assert "already ticked to" in backwards.stderr


def test_the_worker_without_redis_explains_that_work_runs_in_process(env: Path) -> None:
    result = runner.invoke(app, ["worker"])

    assert result.exit_code == 1
    assert "LOYALTY_REDIS_URL" in result.stderr


def test_replay_ingests_the_scenario_through_time_with_the_example_program(
    env: Path, examples: Path
) -> None:
    program = ["--program", str(examples / "program")]
    scenario = str(examples / "events" / "scenario.jsonl")

    result = runner.invoke(app, [*program, "events", "ingest", scenario, "--replay", "--json"])
    shown = runner.invoke(app, [*program, "members", "show", "m-lin", "--json"])

    assert result.exit_code == 1, result.output  # th-0018 is invalid on purpose
    assert json.loads(result.stdout) == {"accepted": 17, "duplicate": 1, "rejected": 1}
    member = json.loads(shown.stdout)
    assert member["member_id"] == "m-lin"
    assert member["email"] == "l***@example.com" and member["phone"] == "139****0001"
    assert member["orders"] == {"paid_orders": 3, "paid": "22480.00", "refunded": "0.00"}


def test_showing_an_unknown_member_names_the_id_and_the_fix(env: Path) -> None:
    result = runner.invoke(app, ["members", "show", "m-nobody"])

    assert result.exit_code == 1
    assert "no member by the id of 'm-nobody'" in result.stderr
