"""Dead-lettered lines are listed with their addresses masked, as every other output is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app
from core.privacy import mask_raw_event, mask_text

runner = CliRunner()

EMAIL, PHONE, TOKEN = "carol.secret@example.com", "+8613912345678", "push-tok-0123456789abcdef"
SECRETS = (EMAIL, "13912345678", TOKEN, "carol.secret")


def _registration(**data: object) -> str:
    event = {
        "id": "e-pii",
        "type": "member.registered",
        "occurred_at": "2026-11-01T10:00:00+08:00",
        "member_id": "m-pii",
        "data": data,
    }
    return json.dumps(event)


@pytest.fixture
def rejected(cli_env: Path) -> Path:
    """A file with a rejected registration (bad consents) and a line that is not JSON."""
    bad = _registration(
        email=EMAIL, phone=PHONE, push_token=TOKEN, consents="yes", note=f"mail {EMAIL}"
    )
    broken = f'{{"data": {{"email": "{EMAIL}", "phone": "{PHONE}", "push_token": "{TOKEN}"'
    (cli_env / "pii.jsonl").write_text(bad + "\n" + broken + "\n")
    result = runner.invoke(app, ["events", "ingest", "pii.jsonl"])
    assert "rejected 2" in result.stdout, result.output
    return cli_env


def test_rejected_events_as_json_show_no_address_in_raw_or_reason(rejected: Path) -> None:
    result = runner.invoke(app, ["events", "rejected", "--json"])

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 2
    for secret in SECRETS:
        assert secret not in result.stdout
    registration = json.loads(next(row["raw"] for row in rows if row["line"] == 1))
    assert registration["data"]["email"] == "c***@example.com"
    assert registration["data"]["phone"] == "139****5678"
    assert registration["data"]["push_token"] == "…abcdef"
    assert registration["data"]["note"] == "mail c***@example.com"
    assert registration["data"]["consents"] == "yes"  # what is not an address stays readable


def test_rejected_events_as_text_show_no_address(rejected: Path) -> None:
    result = runner.invoke(app, ["events", "rejected"])

    assert result.exit_code == 0, result.output
    for secret in SECRETS:
        assert secret not in result.stdout
    assert "c***@example.com" in result.stdout


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mail carol@example.com now", "mail c***@example.com now"),
        ("call +86 139 1234 5678", "call 139****5678"),
        ("call 139-1234-5678.", "call 139****5678."),
        ('"phone": "13912345678"', '"phone": "139****5678"'),
        ('"push_token" : "abcdefghijkl"', '"push_token" : "…ghijkl"'),
        ("occurred_at 2026-11-05T21:40:00+08:00", "occurred_at 2026-11-05T21:40:00+08:00"),
        ("birthday 1990-11-15, total 828.00, order o-12345", None),
    ],
)
def test_free_text_has_its_addresses_masked(text: str, masked: str | None) -> None:
    assert mask_text(text) == (text if masked is None else masked)


def test_a_raw_line_too_deep_to_walk_is_still_masked_as_text() -> None:
    raw = "[" * 100_000 + f'"{EMAIL}"' + "]" * 100_000

    assert EMAIL not in mask_raw_event(raw)


def test_a_phone_sent_as_a_number_is_masked() -> None:
    raw = json.dumps({"data": {"phone": 13912345678, "email": None}})

    assert json.loads(mask_raw_event(raw)) == {"data": {"phone": "139****5678", "email": None}}
