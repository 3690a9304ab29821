"""Bad input is one line of error: absurd numbers are usage errors, an unreachable database
names its URL, and a bug is an internal error (exit 3), never a traceback on the terminal."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from cli_contract import assert_clean_exit
from typer.testing import CliRunner

from core.cli import app
from core.cli.app import INTERNAL_ERROR
from core.cli.options import parse_instant

runner = CliRunner()
SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "events" / "scenario.jsonl"


@pytest.fixture
def shop(cli_env: Path) -> Path:
    """The example program with the example scenario ingested (members m-lin, m-zhao, …)."""
    result = runner.invoke(app, ["events", "ingest", str(SCENARIO)])
    assert "accepted" in result.stdout, result.output
    (cli_env / "deep.json").write_text("[" * 100_000)
    return cli_env


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["events", "rejected", "--limit", "100000000000000000000"], "--limit"),
        (["events", "rejected", "--limit", "0"], "--limit"),
        (["notifications", "log", "--limit", "-5"], "--limit"),
        (["coupons", "refused", "--limit", "100000000000000000000"], "--limit"),
        (["points", "redeem", "m-lin", "500", "--order", "o-1", "--total", "1e9999"], "--total"),
        (["points", "redeem", "m-lin", "500", "--order", "o-1", "--total", "NaN"], "--total"),
        (["points", "redeem", "m-lin", "500", "--order", "o-1", "--total", "-Infinity"], "--total"),
        (["points", "redeem", "m-lin", "500", "--order", "o-1", "--total", "0.001"], "--total"),
        (["points", "redeem", "m-lin", "10" * 12, "--order", "o-1", "--total", "9.00"], "points"),
        (["points", "adjust", "m-lin", "100000000000000000000000", "--reason", "x"], "points"),
        (["points", "adjust", "m-lin", "-100000000000000000000000", "--reason", "x"], "points"),
        (["points", "adjust", "m-lin", "1e3", "--reason", "x"], "points"),
        (["points", "adjust", "m-lin", "5", "--reason", "a\x00b"], "--reason"),
        (["members", "show", "m-\udcff"], "member_id"),
        (["members", "show", "m" * 201], "member_id"),
        (["worker", "--processes", "-1"], "--processes"),
        (["--now", "0001-01-01T00:00:00+00:00", "members", "show", "m-lin"], "--now"),
        (["--now", "9999-12-31T23:59:59-14:00", "points", "expire"], "--now"),
    ],
)
def test_absurd_arguments_are_usage_errors_naming_the_option(
    shop: Path, args: list[str], option: str
) -> None:
    result = runner.invoke(app, args)

    assert_clean_exit(args, result)
    assert result.exit_code == 2, result.output
    assert option in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["points", "adjust", "m-nobody", "5", "--reason", "x"], "m-nobody"),
        (["points", "redeem", "m-lin", "999999", "--order", "o-1", "--total", "9.00"], "points"),
        (["members", "show", "[/]"], "no member by the id of '[/]'"),
        (["coupons", "eligible", "m-lin", "--cart", str(SCENARIO)], "not valid JSON"),
        (["coupons", "eligible", "m-lin", "--cart", "deep.json"], "nested too deeply"),
        (["coupons", "eligible", "m-lin", "--cart", "."], "Is a directory"),
        (["coupons", "eligible", "m-lin", "--cart", "/dev/zero"], "over 1 MB"),
        (["schema", "--out", str(SCENARIO)], "File exists"),
        (["demo", "--dir", str(SCENARIO)], "Not a directory"),
    ],
)
def test_domain_and_file_errors_are_one_line(shop: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)

    assert_clean_exit(args, result)
    assert result.exit_code == 1, result.output
    assert message in _one_error_line(result.stderr)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql://nobody:s3cret@127.0.0.1:1/x",
            "the database at postgresql://nobody:***@127.0.0.1:1/x could not be reached",
        ),
        ("mysql://shop:s3cret@db/x", "unsupported database URL 'mysql://shop:***@db/x'"),
        ("postgresql+nosuchdriver://db/x", "unsupported database URL"),
        ("not a url", "unsupported database URL 'not a url'"),
        ("sqlite:////nonexistent/folder/x.db", "sqlite:////nonexistent/folder/x.db could not be"),
    ],
)
def test_a_database_that_cannot_be_used_is_one_line_naming_its_url(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    monkeypatch.setenv("LOYALTY_DATABASE_URL", url)

    result = runner.invoke(app, ["events", "rejected"])

    assert result.exit_code == 1, result.output
    line = _one_error_line(result.stderr)
    assert message in line
    assert "s3cret" not in result.output


def test_a_setting_that_is_not_valid_names_its_variable(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOYALTY_INGEST_BATCH_SIZE", "lots")

    result = runner.invoke(app, ["events", "rejected"])

    assert result.exit_code == 1
    assert "setting LOYALTY_INGEST_BATCH_SIZE" in _one_error_line(result.stderr)


def test_a_bug_is_an_internal_error_exit_3_with_the_traceback_only_in_verbose(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("core.cli.members.fetch_member_view", broken)

    quiet = runner.invoke(app, ["members", "show", "m-lin"])
    verbose = runner.invoke(app, ["-v", "members", "show", "m-lin"])

    assert quiet.exit_code == verbose.exit_code == INTERNAL_ERROR
    assert _one_error_line(quiet.stderr) == (
        "error: internal error: RuntimeError: boom second line (run with -v for details)"
    )
    assert "Traceback" in verbose.stderr and "RuntimeError: boom" in verbose.stderr
    with pytest.raises(AssertionError, match="exited 3"):
        assert_clean_exit(["members", "show", "m-lin"], quiet)


def test_text_the_shop_sent_prints_literally_not_as_markup(shop: Path) -> None:
    event = {
        "id": "e-markup",
        "type": "member.registered",
        "occurred_at": "2026-03-01T10:00:00+08:00",
        "member_id": "m-markup",
        "data": {"first_name": "[/][bold]Ann", "locale": "en", "timezone": "Asia/Shanghai"},
    }
    (shop / "markup.jsonl").write_text(json.dumps(event) + "\n")
    runner.invoke(app, ["events", "ingest", "markup.jsonl"])

    result = runner.invoke(app, ["members", "show", "m-markup"])

    assert result.exit_code == 0, result.output
    assert "[/][bold]Ann" in result.stdout


_NAIVE = [
    "2026-11-20",
    "2026-11-20T10:00",
    "2026-11-20T10:00:00",
    "2026-11-20 10:00:00",
    "2026-11-20T10:00:00.123456",
    "2026-11-20T10:00:00,5",
    "20261120T1000",
    "2026-W47-5",
    "2026-11-20+08:00",  # Python reads the +08:00 as the hour: still naive
]


@pytest.mark.parametrize("naive", _NAIVE)
def test_the_hint_for_a_time_without_a_zone_suggests_times_that_are_accepted(
    naive: str,
) -> None:
    with pytest.raises(Exception, match="has no time zone") as raised:
        parse_instant(naive, option="--now")

    suggested = re.search(r"e\.g\. (\S+) or (\S+)$", str(raised.value))
    assert suggested, str(raised.value)
    for suggestion in suggested.groups():
        accepted = parse_instant(suggestion, option="--now")
        assert accepted.replace(tzinfo=None) == datetime.fromisoformat(naive)


def test_the_hint_reaches_the_user_through_the_command_line(shop: Path) -> None:
    result = runner.invoke(app, ["--now", "2026-11-20", "members", "show", "m-lin"])

    assert result.exit_code == 2
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert "2026-11-20T00:00:00+08:00 or 2026-11-20T00:00:00Z" in flat
