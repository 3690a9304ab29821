"""`loyalty-engine notifications …`: unsubscribe, replay, log - masked, with exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from notification_helpers import NOW, fetch_message
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from core.cli import app
from core.events.handlers import unit_of_work
from core.program.loader import Program
from notifications.dispatch import send_messages
from notifications.dispatcher import Dispatcher
from notifications.errors import TransientDeliveryError
from notifications.requests import request_message
from notifications.samples import sample_variables
from notifications.tables import messages
from notifications.tokens import load_secret, make_token
from notifications.transports.stub import StubTransport

runner = CliRunner()


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, db_url: str, engine: Engine, tmp_path: Path, program: Program
) -> Path:
    monkeypatch.setenv("LOYALTY_DATABASE_URL", db_url)
    monkeypatch.delenv("LOYALTY_REDIS_URL", raising=False)
    monkeypatch.setenv("LOYALTY_PROGRAM_DIR", str(program.directory))
    monkeypatch.setenv("LOYALTY_OUTBOX", str(tmp_path / "outbox.jsonl"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def requested(engine: Engine, program: Program, *, key: str = "k-1", channel: str = "email") -> str:
    with unit_of_work(engine, now=NOW, program=program) as ctx:
        message_id: str = request_message(
            ctx, member_id="m-1", channels=[channel],
            template_id="birthday" if channel == "sms" else "welcome",
            variables=sample_variables(program, "zh-CN"), kind="transactional",
            dedupe_key=key, now=NOW,
        ).message_id  # fmt: skip
    return message_id


def test_unsubscribe_applies_a_signed_token(
    env: Path, engine: Engine, add_member: Callable[..., str]
) -> None:
    add_member("m-1")
    with engine.begin() as conn:
        token = make_token(load_secret(conn, None), member_id="m-1", channel="email")

    first = runner.invoke(app, ["notifications", "unsubscribe", token])
    again = runner.invoke(app, ["notifications", "unsubscribe", token, "--json"])

    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "m-1 unsubscribed from email"
    assert json.loads(again.stdout) == {"member_id": "m-1", "channel": "email", "new": False}


@pytest.mark.parametrize("token", ["nonsense", "u1.bS0x.forged-signature"])
def test_a_bad_token_exits_1_and_says_why(env: Path, token: str) -> None:
    result = runner.invoke(app, ["notifications", "unsubscribe", token])

    assert result.exit_code == 1
    assert "invalid unsubscribe token" in result.stderr


def test_a_token_signed_with_another_key_is_refused(env: Path, engine: Engine) -> None:
    forged = make_token(b"someone else's key", member_id="m-1", channel="email")

    result = runner.invoke(app, ["notifications", "unsubscribe", forged])

    assert result.exit_code == 1
    assert "the signature does not match" in result.stderr


def test_replay_sends_a_dead_message_again_through_the_outbox(
    env: Path, engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    add_member("m-1")
    message_id = requested(engine, program)
    with engine.begin() as conn:
        conn.execute(update(messages).values(status="dead", reason="retries_exhausted", attempts=6))

    result = runner.invoke(
        app, ["--now", NOW.isoformat(), "notifications", "replay", "--all-dead", "--json"]
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"replayed": [message_id]}
    assert fetch_message(engine, message_id)["status"] == "sent"
    [line] = (env / "outbox.jsonl").read_text().splitlines()
    assert json.loads(line)["message_id"] == message_id


def test_replay_refuses_a_message_that_was_sent(
    env: Path, engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    add_member("m-1")
    message_id = requested(engine, program)
    with engine.begin() as conn:
        conn.execute(update(messages).values(status="sent"))

    result = runner.invoke(app, ["notifications", "replay", "--message", message_id])
    unknown = runner.invoke(app, ["notifications", "replay", "--message", "msg_nope"])
    neither = runner.invoke(app, ["notifications", "replay"])

    assert result.exit_code == 1 and "only dead, failed or unknown" in result.stderr
    assert unknown.exit_code == 1 and "no message by the id" in unknown.stderr
    assert neither.exit_code == 1 and "--message ID or --all-dead" in neither.stderr


def test_the_log_never_shows_a_full_address(
    env: Path, engine: Engine, program: Program, dispatcher: Dispatcher,
    stubs: dict[str, StubTransport], add_member: Callable[..., str],
) -> None:  # fmt: skip
    add_member("m-1", phone="+8613800000001", email="alice.smith@example.com")
    email_id = requested(engine, program, key="k-1", channel="email")
    sms_id = requested(engine, program, key="k-2", channel="sms")
    stubs["sms"].fail_next(TransientDeliveryError("HTTP 503: +8613800000001 unreachable"))
    send_messages(engine, [email_id, sms_id], now=NOW, dispatcher=dispatcher)

    as_json = runner.invoke(app, ["notifications", "log", "--member", "m-1", "--json"])
    as_table = runner.invoke(app, ["notifications", "log"])

    entries = {entry["channel"]: entry for entry in json.loads(as_json.stdout)}
    assert entries["email"]["to"] == "a***@example.com"
    assert entries["sms"]["to"] == "138****0001"
    assert entries["sms"]["error"] == "HTTP 503: 138****0001 unreachable"
    for output in (as_json.stdout, as_table.stdout):
        assert "alice.smith@example.com" not in output
        assert "13800000001" not in output


def test_members_show_lists_recent_messages_masked(
    env: Path, engine: Engine, program: Program, add_member: Callable[..., str]
) -> None:
    add_member("m-1", email="alice.smith@example.com")
    requested(engine, program)

    result = runner.invoke(app, ["members", "show", "m-1", "--json"])

    view = json.loads(result.stdout)
    assert view["messages"][0]["to"] == "a***@example.com"
    assert view["unsubscribed"] == []
    assert "alice.smith@example.com" not in result.stdout
