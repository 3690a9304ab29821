"""Delivery callbacks update the record once each; bounces and complaints protect the address."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from notification_helpers import NOW, fetch_message
from sqlalchemy import Engine, select, update

from core.broker import drain
from core.clock import FixedClock, set_clock
from core.events.handlers import unit_of_work
from core.program.loader import Program
from core.runtime import Runtime
from notifications.actors import delivery_callback
from notifications.callbacks import CallbackKind, DeliveryCallback, record_delivery_callback
from notifications.dispatch import send_messages
from notifications.dispatcher import Dispatcher
from notifications.errors import MessageNotFound
from notifications.requests import request_message
from notifications.samples import sample_variables
from notifications.tables import messages, suppressions, unsubscribes


@pytest.fixture
def sent(
    engine: Engine, program: Program, dispatcher: Dispatcher, add_member: Callable[..., str]
) -> str:
    add_member("m-1")
    with unit_of_work(engine, now=NOW, program=program) as ctx:
        message_id: str = request_message(
            ctx, member_id="m-1", channels=["email"], template_id="welcome",
            variables=sample_variables(program, "zh-CN"), kind="marketing", dedupe_key="k-1",
            now=NOW,
        ).message_id  # fmt: skip
    send_messages(engine, [message_id], now=NOW, dispatcher=dispatcher)
    return message_id


def callback(kind: CallbackKind, message_id: str, n: int = 1, **extra: Any) -> DeliveryCallback:
    return DeliveryCallback(
        id=f"cb-{n}", kind=kind, occurred_at=NOW + timedelta(minutes=n), message_id=message_id,
        **extra,
    )  # fmt: skip


def apply(engine: Engine, event: DeliveryCallback) -> bool:
    with engine.begin() as conn:
        return record_delivery_callback(conn, event, now=NOW).applied


def test_delivery_moves_forward_and_a_redelivered_callback_changes_nothing(
    engine: Engine, sent: str
) -> None:
    applied = [
        apply(engine, callback("delivered", sent, 1)),
        apply(engine, callback("clicked", sent, 3)),
        apply(engine, callback("opened", sent, 2)),  # late: does not move it back
        apply(engine, callback("clicked", sent, 3)),  # the same callback again
    ]

    assert applied == [True, True, True, False]
    assert fetch_message(engine, sent)["delivery"] == "clicked"


def test_a_hard_bounce_suppresses_the_address_and_a_soft_one_does_not(
    engine: Engine, sent: str
) -> None:
    apply(engine, callback("bounced", sent, 1, bounce="soft"))
    with engine.connect() as conn:
        assert conn.execute(select(suppressions)).all() == []

    apply(engine, callback("bounced", sent, 2))

    with engine.connect() as conn:
        [row] = conn.execute(select(suppressions)).mappings().all()
    assert (row["channel"], row["reason"], row["to_masked"]) == ("email", "hard_bounce",
                                                                  "m***@example.com")  # fmt: skip


def test_a_complaint_suppresses_and_unsubscribes(engine: Engine, sent: str) -> None:
    apply(engine, callback("complained", sent))

    with engine.connect() as conn:
        assert conn.execute(select(suppressions.c.reason)).scalars().all() == ["complaint"]
        stopped = conn.execute(select(unsubscribes.c.member_id, unsubscribes.c.channel)).all()
    assert stopped == [("m-1", "email")]


def test_a_callback_resolves_a_message_an_interrupted_send_left_unknown(
    engine: Engine, sent: str
) -> None:
    with engine.begin() as conn:
        conn.execute(update(messages).values(status="unknown", reason="interrupted"))

    apply(engine, callback("delivered", sent))

    row = fetch_message(engine, sent)
    assert (row["status"], row["reason"], row["delivery"]) == (
        "sent", "confirmed_by_callback", "delivered",
    )  # fmt: skip


def test_a_callback_found_by_the_providers_id(engine: Engine, sent: str) -> None:
    provider_id = fetch_message(engine, sent)["provider_message_id"]

    apply(engine, DeliveryCallback(id="cb-9", kind="opened", occurred_at=NOW,
                                   provider_message_id=provider_id))  # fmt: skip

    assert fetch_message(engine, sent)["delivery"] == "opened"


def test_a_callback_for_no_known_message_is_an_error(engine: Engine) -> None:
    with pytest.raises(MessageNotFound):
        apply(engine, callback("delivered", "msg_nope"))


def test_callbacks_arrive_through_the_delivery_callback_actor(
    engine: Engine, sent: str, runtime: Runtime
) -> None:
    set_clock(FixedClock(NOW))

    delivery_callback.send(
        {"id": "cb-a", "kind": "delivered", "occurred_at": NOW.isoformat(), "message_id": sent}
    )
    drain()

    assert fetch_message(engine, sent)["delivery"] == "delivered"
