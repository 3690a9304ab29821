"""Fixtures of the notifications tests: the example program, members, stub providers."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from notification_helpers import NOW, member_event
from sqlalchemy import Engine

import worker
from core.events.handlers import HandlerRegistry
from core.events.intake import Intake, ingest
from core.program.loader import Program, load_program
from core.runtime import Runtime, set_runtime
from core.settings import Settings
from notifications.caps import DatabaseCapCounter
from notifications.consents import lift_unsubscribes_on_new_consent
from notifications.dispatcher import Dispatcher, use_dispatcher
from notifications.guardrails import Policy
from notifications.settings import NotificationSettings
from notifications.transports.stub import StubTransport


@pytest.fixture(scope="session")
def program(examples: Path) -> Program:
    return load_program(examples / "program")


def consent_registry() -> HandlerRegistry:
    registry = HandlerRegistry()
    registry.subscribe("member.registered", "member.updated", needs_program=False)(
        lift_unsubscribes_on_new_consent
    )
    return registry


@pytest.fixture
def add_member(engine: Engine) -> Callable[..., str]:
    """Ingest a member.registered (or member.updated) event; returns the member id."""

    def add(member_id: str, **profile: Any) -> str:
        report = ingest(
            [member_event(member_id, **profile)],
            Intake(engine=engine, now=NOW, source="test", registry=consent_registry()),
        )
        assert report.rejected == 0, report
        return member_id

    return add


@pytest.fixture
def options() -> NotificationSettings:
    return NotificationSettings(  # type: ignore[call-arg]
        _env_file=None,
        retry_min_backoff_s=30,
        retry_max_backoff_s=3600,
        max_attempts=4,
        unsubscribe_url="https://shop.example.com/unsubscribe/{token}",
    )


@pytest.fixture
def stubs() -> dict[str, StubTransport]:
    return {
        channel: StubTransport(channel, name=f"stub-{channel}")
        for channel in ("email", "sms", "push")
    }


@pytest.fixture
def dispatcher(
    stubs: dict[str, StubTransport], options: NotificationSettings, program: Program
) -> Iterator[Dispatcher]:
    sender = program.program_file.messaging.sender
    built = Dispatcher(
        transports=stubs,
        caps=DatabaseCapCounter(),
        options=options,
        policy=Policy.from_program(program),
        email_sender=sender.email,
        sms_signature=sender.sms_signature,
        rng=random.Random(7),
    )
    with use_dispatcher(built):
        yield built


@pytest.fixture
def runtime(db_url: str, engine: Engine, program: Program, tmp_path: Path) -> Iterator[Runtime]:
    """An embedded runtime on the test database with the example program, broker installed."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=db_url,
        redis_url=None,
        program_dir=program.directory,
        outbox=tmp_path / "outbox.jsonl",
    )
    built = Runtime(settings=settings, program_dir=program.directory, _program=program)
    set_runtime(built)
    worker.setup(settings)
    yield built
    worker.setup(Settings(_env_file=None, redis_url=None))  # type: ignore[call-arg]
