"""The package's dramatiq actors: thin, each decodes its arguments and calls one service.

Deferred and retried messages come back when due: with Redis and the wall clock, the send is
enqueued with dramatiq's ``delay``; otherwise (the in-process broker of the embedded default,
or ``tick``'s simulated clock, where a wall-clock delay would mean nothing) the release job
(:mod:`notifications.jobs`) enqueues them when the engine clock reaches their time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dramatiq.brokers.stub import StubBroker

from core.broker import actor, get_broker
from core.clock import SystemClock, get_clock
from core.runtime import get_runtime

QUEUE = "notifications"
# Messages per actor message: a batch costs a handful of statements whatever its size, so 200
# makes that fixed cost small beside the per-message work (docs/bench/notifications.md).
SEND_BATCH = 200


@actor(queue_name=QUEUE, max_retries=5)
def send_message(message_id: str) -> None:
    """Send one recorded message if it is due."""
    _send([message_id])


@actor(queue_name=QUEUE, max_retries=5)
def send_messages(message_ids: list[str]) -> None:
    """Send a batch of recorded messages (the ones due now)."""
    _send(message_ids)


def _send(message_ids: Sequence[str]) -> None:
    from notifications.dispatch import send_messages as send
    from notifications.dispatcher import get_dispatcher

    runtime = get_runtime()
    now = runtime.now()
    report = send(runtime.engine, message_ids, now=now, dispatcher=get_dispatcher(runtime))
    schedule_later(report.later, now=now)


@actor(queue_name=QUEUE, max_retries=10)
def delivery_callback(callback: dict[str, Any]) -> None:
    """A provider's delivery event (delivered, bounced, complained, opened, clicked)."""
    from notifications.callbacks import DeliveryCallback, record_delivery_callback

    runtime = get_runtime()
    event = DeliveryCallback.model_validate(callback)
    with runtime.engine.begin() as conn:
        record_delivery_callback(conn, event, now=runtime.now())


@actor(queue_name=QUEUE, max_retries=3)
def release_due(fire_time: str) -> None:
    """Enqueue every message due at ``fire_time`` (deferred, retrying, stuck or forgotten)."""
    from notifications.dispatcher import get_dispatcher
    from notifications.release import due_message_ids

    runtime = get_runtime()
    lease = get_dispatcher(runtime).options.sending_lease_s
    now = max(datetime.fromisoformat(fire_time), runtime.now())  # all that is due by now
    ids = due_message_ids(runtime.engine, now=now, lease_s=lease)
    enqueue_sends(ids)


def enqueue_sends(message_ids: Sequence[str]) -> None:
    """Enqueue sends now: one actor message per message, or batches of SEND_BATCH."""
    if len(message_ids) == 1:
        send_message.send(message_ids[0])
        return
    for start in range(0, len(message_ids), SEND_BATCH):
        send_messages.send(list(message_ids[start : start + SEND_BATCH]))


def schedule_later(later: Mapping[str, datetime], *, now: datetime) -> None:
    """Have each message looked at again when due (see the module docstring). Messages due at
    the same moment (a quiet night ending at 09:00 in one zone) travel in shared batches."""
    if not later or isinstance(get_broker(), StubBroker):
        return
    if not isinstance(get_clock(), SystemClock):
        return
    by_time: dict[datetime, list[str]] = defaultdict(list)
    for message_id, when in later.items():
        by_time[when].append(message_id)
    for when, ids in by_time.items():
        delay_ms = max(0, int((when - now).total_seconds() * 1000))
        for start in range(0, len(ids), SEND_BATCH):
            batch = ids[start : start + SEND_BATCH]
            send_messages.send_with_options(args=(batch,), delay=delay_ms)
