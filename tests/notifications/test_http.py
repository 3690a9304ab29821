"""SMS and push through a real HTTP server on loopback: payloads, retries, 400s, failover."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from notification_helpers import NOW, FakeProvider, fetch_message
from sqlalchemy import Engine, func, select

from core.events.handlers import unit_of_work
from core.program.loader import Program
from core.settings import Settings
from notifications.dispatch import send_messages
from notifications.dispatcher import Dispatcher
from notifications.errors import PermanentDeliveryError, TransientDeliveryError
from notifications.requests import request_message
from notifications.samples import sample_variables
from notifications.settings import NotificationSettings
from notifications.tables import suppressions
from notifications.transports import build_transports
from notifications.transports.base import OutgoingMessage
from notifications.transports.http import PAYLOADS, HttpTransport
from notifications.transports.stub import StubTransport


@pytest.fixture
def providers() -> Iterator[Callable[..., FakeProvider]]:
    started: list[FakeProvider] = []

    def start(statuses: list[int] | None = None, **options: Any) -> FakeProvider:
        provider = FakeProvider(statuses, **options)
        started.append(provider)
        return provider

    yield start
    for provider in started:
        provider.close()


def sms(**overrides: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "message_id": "msg_sms_1",
        "channel": "sms",
        "to": "+8613800000001",
        "member_id": "m-1",
        "template": "birthday",
        "locale": "zh-CN",
        "body": "【生活家】生日快乐！退订回T",
        "sent_at": NOW,
    } | overrides
    return OutgoingMessage(**values)


def http(channel: str, url: str, shape: str, **options: Any) -> HttpTransport:
    return HttpTransport(
        channel=channel, endpoint=url, api_key="key-123", payload=PAYLOADS[shape],
        name=f"{channel}-http", **options,
    )  # fmt: skip


def test_an_sms_is_posted_as_json_with_the_api_key_and_an_idempotency_key(
    providers: Callable[..., FakeProvider],
) -> None:
    gateway = providers()

    receipt = http("sms", gateway.url, "sms").send(sms())

    [request] = gateway.requests
    assert receipt.provider_message_id == "prov-1"
    assert request["headers"]["Authorization"] == "Bearer key-123"
    assert request["headers"]["Idempotency-Key"] == "msg_sms_1"
    assert request["json"] == {
        "to": "+8613800000001",
        "text": "【生活家】生日快乐！退订回T",
        "message_id": "msg_sms_1",
        "member_id": "m-1",
    }


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (
            "push",
            {"to": "tok-1", "title": "Hi", "body": "Hello",
             "data": {"message_id": "msg_p", "template": "welcome"}},
        ),
        (
            "fcm",
            {"message": {"token": "tok-1", "notification": {"title": "Hi", "body": "Hello"},
                         "data": {"message_id": "msg_p", "template": "welcome"}}},
        ),
    ],
)  # fmt: skip
def test_a_push_payload_is_generic_or_fcm_shaped_by_configuration(
    providers: Callable[..., FakeProvider], shape: str, expected: dict[str, Any]
) -> None:
    service = providers()
    push = sms(message_id="msg_p", channel="push", to="tok-1", template="welcome",
               title="Hi", body="Hello")  # fmt: skip

    http("push", service.url, shape).send(push)

    assert service.requests[0]["json"] == expected


@pytest.mark.parametrize(
    ("status", "error", "suppress"),
    [
        (503, TransientDeliveryError, None),
        (500, TransientDeliveryError, None),
        (429, TransientDeliveryError, None),
        (401, TransientDeliveryError, None),
        (400, PermanentDeliveryError, True),
        (404, PermanentDeliveryError, True),
        (409, PermanentDeliveryError, False),
    ],
)
def test_provider_answers_are_mapped_to_transient_or_permanent(
    providers: Callable[..., FakeProvider], status: int, error: type[Exception],
    suppress: bool | None,
) -> None:  # fmt: skip
    gateway = providers([status])

    with pytest.raises(error) as raised:
        http("sms", gateway.url, "sms").send(sms())

    if suppress is not None:
        assert raised.value.suppress is suppress  # type: ignore[attr-defined]
    if status == 429:
        assert raised.value.retry_after == 90  # type: ignore[attr-defined]


def test_a_provider_too_slow_to_answer_is_a_transient_timeout(
    providers: Callable[..., FakeProvider],
) -> None:
    gateway = providers(delay_s=1.0)

    with pytest.raises(TransientDeliveryError, match="timed out"):
        http("sms", gateway.url, "sms", timeout=0.2).send(sms())


@pytest.fixture
def through(
    engine: Engine, program: Program, dispatcher: Dispatcher, options: NotificationSettings,
    add_member: Callable[..., str],
) -> Callable[..., tuple[str, Callable[..., dict[str, str]]]]:  # fmt: skip
    """Route SMS through real HTTP transports built from settings; request one message."""

    def setup(**settings: Any) -> tuple[str, Callable[..., dict[str, str]]]:
        built = build_transports(
            Settings(_env_file=None, **settings.pop("core", {})),  # type: ignore[call-arg]
            options.model_copy(update=settings),
        )
        dispatcher.transports = {**dispatcher.transports, "sms": built["sms"]}
        add_member("m-1")
        with unit_of_work(engine, now=NOW, program=program) as ctx:
            message_id = request_message(
                ctx, member_id="m-1", channels=["sms"], template_id="birthday",
                variables=sample_variables(program, "zh-CN"), kind="transactional",
                dedupe_key="k-1", now=NOW,
            ).message_id  # fmt: skip

        def send(at: Any = NOW) -> dict[str, str]:
            return send_messages(engine, [message_id], now=at, dispatcher=dispatcher).outcomes

        return message_id, send

    return setup


def test_a_503_is_retried_and_then_delivered_once(
    providers: Callable[..., FakeProvider], through: Callable[..., Any], engine: Engine
) -> None:
    gateway = providers([503])
    message_id, send = through(core={"sms_endpoint": gateway.url, "sms_api_key": "k"})

    first = send()
    second = send(fetch_message(engine, message_id)["not_before"])

    assert (first, second) == ({message_id: "retrying"}, {message_id: "sent"})
    assert len(gateway.requests) == 2
    assert len(gateway.delivered) == 1
    body = next(iter(gateway.delivered.values()))["json"]["text"]
    assert body.startswith("【茶舍】王小明，生日快乐！")


def test_a_400_is_not_retried_and_suppresses_the_number(
    providers: Callable[..., FakeProvider], through: Callable[..., Any], engine: Engine
) -> None:
    gateway = providers([400])
    message_id, send = through(core={"sms_endpoint": gateway.url})

    outcome = send()
    again = send(NOW + timedelta(hours=1))

    row = fetch_message(engine, message_id)
    assert (outcome, again) == ({message_id: "failed"}, {})
    assert (row["status"], row["reason"], row["attempts"]) == ("failed", "invalid_address", 1)
    assert len(gateway.requests) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(suppressions)).scalar() == 1


def test_a_provider_outage_fails_over_to_the_secondary(
    providers: Callable[..., FakeProvider], through: Callable[..., Any], engine: Engine
) -> None:
    secondary = providers()
    message_id, send = through(
        core={"sms_endpoint": "http://127.0.0.1:9/down"},  # nothing listens on port 9
        secondary_sms_endpoint=secondary.url,
        http_timeout_s=2,
    )

    outcome = send()

    row = fetch_message(engine, message_id)
    assert outcome == {message_id: "sent"}
    assert row["provider"] == "sms-http-secondary"
    assert len(secondary.delivered) == 1


def test_a_429_is_retried_no_sooner_than_the_providers_retry_after(
    providers: Callable[..., FakeProvider], through: Callable[..., Any], engine: Engine
) -> None:
    gateway = providers([429])
    message_id, send = through(core={"sms_endpoint": gateway.url})

    send()

    assert fetch_message(engine, message_id)["not_before"] - NOW >= timedelta(seconds=90)


def test_without_provider_settings_every_channel_writes_the_outbox(tmp_path: Any) -> None:
    settings = Settings(_env_file=None, outbox=tmp_path / "o.jsonl")  # type: ignore[call-arg]

    built = build_transports(settings, NotificationSettings(_env_file=None))  # type: ignore[call-arg]

    assert {channel: t.name for channel, t in built.items()} == {
        "email": "outbox", "sms": "outbox", "push": "outbox",
    }  # fmt: skip
    assert not isinstance(built["sms"], StubTransport)
