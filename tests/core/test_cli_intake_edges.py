"""Edges of the intake and tick commands: markup in rejected lines, --json exits, long ticks."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from core.cli import app

runner = CliRunner()


def test_a_rejected_line_with_markup_prints_literally_and_json_explains_the_exit(
    cli_env: Path,
) -> None:
    (cli_env / "bad.jsonl").write_text('{"id": "[/]", "type": "[bold]nope[/]"}\n')

    text = runner.invoke(app, ["events", "ingest", "bad.jsonl"])
    as_json = runner.invoke(app, ["events", "ingest", "bad.jsonl", "--json"])

    assert text.exit_code == 1 and "[bold]nope[/]" in text.stderr
    assert "Traceback" not in text.stderr
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["rejected"] == 1
    assert "1 line(s) rejected" in as_json.stderr


def test_a_tick_of_more_than_ten_years_is_refused_with_the_fix(cli_env: Path) -> None:
    result = runner.invoke(
        app, ["tick", "--from", "2026-01-01T00:00:00Z", "--until", "2999-01-01T00:00:00Z"]
    )

    assert result.exit_code == 1
    assert "at most 10 years at a time; tick in steps" in result.stderr
