"""A worker killed with SIGKILL between the provider call and the commit, then restarted:
no second send where the provider takes an idempotency key, an honest record where not."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from notification_helpers import NOW, FakeProvider, fetch_message, member_event
from sqlalchemy import Engine

import worker
from core.events.handlers import HandlerRegistry, unit_of_work
from core.events.intake import Intake, ingest
from core.program.loader import Program
from core.settings import Settings
from notifications.actors import release_due
from notifications.requests import request_message
from notifications.samples import sample_variables

CRASH_WORKER = Path(__file__).with_name("crash_worker.py")


class Mailbox:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.content)
        return "250 OK"


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def providers() -> Iterator[dict[str, Any]]:
    gateway = FakeProvider()
    mailbox = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    yield {"gateway": gateway, "mailbox": mailbox, "smtp_port": port}
    smtp.stop()
    gateway.close()


@pytest.fixture
def workers(
    pg_url: str, redis_url: str, program: Program, providers: dict[str, Any], tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*, crash: bool) -> subprocess.Popen[bytes]:
        ready = tmp_path / f"ready-{len(started)}"
        env = os.environ | {
            "LOYALTY_DATABASE_URL": pg_url,
            "LOYALTY_REDIS_URL": redis_url,
            "LOYALTY_PROGRAM_DIR": str(program.directory),
            "LOYALTY_SMS_ENDPOINT": providers["gateway"].url,
            "LOYALTY_SMTP_HOST": "127.0.0.1",
            "LOYALTY_SMTP_PORT": str(providers["smtp_port"]),
            "LOYALTY_SMTP_TLS": "false",
            "LOYALTY_SENDING_LEASE_S": "0.05",
            "READY_MARKER": str(ready),
        }
        env.pop("CRASH_MARKER", None)
        if crash:
            env["CRASH_MARKER"] = str(tmp_path / "handed-over")
        process = subprocess.Popen([sys.executable, str(CRASH_WORKER)], env=env, cwd=tmp_path)
        started.append(process)
        wait_for(lambda: ready.exists() or process.poll() is not None, "the worker to start")
        assert process.poll() is None, "the worker process died on start"
        return process

    settings = Settings(_env_file=None, database_url=pg_url, redis_url=redis_url)  # type: ignore[call-arg]
    worker.setup(settings)  # this process enqueues through the same Redis
    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
    worker.setup(Settings(_env_file=None, redis_url=None))  # type: ignore[call-arg]


def request(engine: Engine, program: Program, channel: str) -> str:
    ingest([member_event("m-1")], Intake(engine=engine, now=NOW, registry=HandlerRegistry()))
    template = "birthday" if channel == "sms" else "welcome"
    with unit_of_work(engine, now=NOW, program=program) as ctx:  # enqueued through Redis
        message_id: str = request_message(
            ctx, member_id="m-1", channels=[channel], template_id=template,
            variables=sample_variables(program, "zh-CN"), kind="transactional",
            dedupe_key=f"crash-{channel}", now=NOW,
        ).message_id  # fmt: skip
    return message_id


def crash_then_restart(
    engine: Engine, program: Program, workers: Callable[..., Any], tmp_path: Path, channel: str
) -> str:
    doomed = workers(crash=True)
    message_id = request(engine, program, channel)
    wait_for((tmp_path / "handed-over").exists, "the provider call")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    assert fetch_message(engine, message_id)["status"] == "sending"

    workers(crash=False)
    time.sleep(0.1)  # let the 0.05 s sending lease of the dead worker run out
    release_due.send(datetime.now(UTC).isoformat())  # the scheduler's sweep does this
    wait_for(lambda: fetch_message(engine, message_id)["status"] != "sending", "the recovery")
    return message_id


def test_an_idempotent_provider_is_called_again_and_delivers_once(
    pg_engine: Engine, program: Program, workers: Callable[..., Any],
    providers: dict[str, Any], tmp_path: Path,
) -> None:  # fmt: skip
    message_id = crash_then_restart(pg_engine, program, workers, tmp_path, "sms")

    gateway = providers["gateway"]
    row = fetch_message(pg_engine, message_id)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert [r["headers"]["Idempotency-Key"] for r in gateway.requests] == [message_id] * 2
    assert len(gateway.delivered) == 1  # the provider de-duplicated the second call
    assert row["provider_message_id"] == gateway.delivered[message_id]["id"]


def test_a_provider_without_idempotency_is_not_called_again_and_the_record_says_unknown(
    pg_engine: Engine, program: Program, workers: Callable[..., Any],
    providers: dict[str, Any], tmp_path: Path,
) -> None:  # fmt: skip
    message_id = crash_then_restart(pg_engine, program, workers, tmp_path, "email")

    row = fetch_message(pg_engine, message_id)
    assert (row["status"], row["reason"], row["provider"]) == ("unknown", "interrupted", "smtp")
    assert len(providers["mailbox"].received) == 1
