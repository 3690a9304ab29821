"""A real dramatiq worker process for the crash-recovery test (run as a script, not collected).

Settings come from the environment (LOYALTY_DATABASE_URL, LOYALTY_REDIS_URL, provider
settings). With ``CRASH_MARKER`` set, every transport hands its messages to the provider and
then, before the outcome can be committed, writes the marker file and hangs, waiting for the
test to kill the process with SIGKILL.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dramatiq import Worker

import worker
from notifications.dispatcher import get_dispatcher, use_dispatcher
from notifications.errors import DeliveryError
from notifications.transports.base import BaseTransport, OutgoingMessage, Receipt


class HangAfterSending(BaseTransport):
    """The provider takes the message; then this worker hangs before it can record that."""

    def __init__(self, inner: BaseTransport, marker: Path) -> None:
        self.inner, self.marker = inner, marker
        self.channel, self.name, self.idempotent = inner.channel, inner.name, inner.idempotent

    def send_many(self, messages: Sequence[OutgoingMessage]) -> list[Receipt | DeliveryError]:
        self.inner.send_many(messages)  # the provider has them now
        self.marker.write_text(",".join(m.message_id for m in messages))
        while True:
            time.sleep(60)


def main() -> None:
    broker = worker.setup()
    dispatcher = get_dispatcher()
    marker = os.environ.get("CRASH_MARKER")
    if marker:
        dispatcher.transports = {
            channel: HangAfterSending(transport, Path(marker))
            for channel, transport in dispatcher.transports.items()
        }
    with use_dispatcher(dispatcher):
        consumer = Worker(broker, worker_threads=1, worker_timeout=100)
        consumer.start()
        Path(os.environ["READY_MARKER"]).write_text("ready")
        while True:
            time.sleep(60)


if __name__ == "__main__":
    main()
