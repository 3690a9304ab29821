"""The file outbox of the embedded default (CONTRACT.md): one JSON object per line.

``{"message_id", "channel", "to", "member_id", "campaign_id", "template", "locale", "subject",
"title", "body", "sent_at"}``, absent fields left out. The outbox plays the provider, so ``to``
is the real address, as a gateway would receive it.

The same message is never written twice: under an exclusive ``flock`` on the file, the writer
first reads whatever other processes appended since it last looked (keeping the message ids it
has seen, so the check costs only the new lines), skips ids already there, then appends and
fsyncs. A line cut short by a crash is completed with a newline before anything is appended,
and its message, which never fully reached the file, is written again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from notifications.transports.base import (
    BaseTransport,
    DeliveryError,
    OutgoingMessage,
    Receipt,
    TransientDeliveryError,
)

FIELDS = (
    "message_id",
    "channel",
    "to",
    "member_id",
    "campaign_id",
    "template",
    "locale",
    "subject",
    "title",
    "body",
    "sent_at",
)


def outbox_record(message: OutgoingMessage) -> dict[str, Any]:
    values = {name: getattr(message, name, None) for name in FIELDS}
    values["sent_at"] = message.sent_at.isoformat()
    return {name: value for name, value in values.items() if value is not None}


class OutboxFile:
    """One outbox file, shared by every transport and thread of this process that writes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._offset = 0
        self._identity: tuple[int, int] | None = None

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Append the records whose message id is not in the file yet."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                needs_newline = self._catch_up(handle)
                lines = [self._line(record) for record in records]
                data = b"".join(line for line in lines if line)
                if data:
                    handle.write(b"\n" + data if needs_newline else data)
                    handle.flush()
                    os.fsync(handle.fileno())
                self._offset = handle.tell()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _line(self, record: dict[str, Any]) -> bytes | None:
        message_id = record["message_id"]
        if message_id in self._seen:
            return None
        self._seen.add(message_id)
        return (json.dumps(record, ensure_ascii=False) + "\n").encode()

    def _catch_up(self, handle: IO[bytes]) -> bool:
        """Read lines appended since the last look; True if the file ends mid-line."""
        status = os.fstat(handle.fileno())
        identity = (status.st_dev, status.st_ino)
        if identity != self._identity or status.st_size < self._offset:
            self._seen.clear()
            self._offset, self._identity = 0, identity
        handle.seek(self._offset)
        new = handle.read()
        complete, _, partial = new.rpartition(b"\n")
        for line in complete.split(b"\n") if complete else ():
            self._remember(line)
        return bool(partial)

    def _remember(self, line: bytes) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):  # not a record of ours
            self._seen.add(json.loads(line)["message_id"])


_files: dict[Path, OutboxFile] = {}
_files_lock = threading.Lock()


def outbox_file(path: Path) -> OutboxFile:
    """The process-wide writer of ``path``."""
    resolved = path.resolve()
    with _files_lock:
        return _files.setdefault(resolved, OutboxFile(resolved))


class OutboxTransport(BaseTransport):
    """Writes one channel's messages to the outbox file; idempotent by message id."""

    idempotent = True
    local = True

    def __init__(self, path: Path, *, channel: str, name: str = "outbox") -> None:
        self.channel, self.name = channel, name
        self.file = outbox_file(path)

    def send(self, message: OutgoingMessage) -> Receipt:
        result = self.send_many([message])[0]
        if isinstance(result, DeliveryError):
            raise result
        return result

    def send_many(self, messages: Sequence[OutgoingMessage]) -> list[Receipt | DeliveryError]:
        try:
            self.file.append([outbox_record(message) for message in messages])
        except OSError as exc:
            error = TransientDeliveryError(
                f"cannot write {self.file.path}: {exc}", provider=self.name
            )
            return [error for _ in messages]
        return [Receipt(self.name, message.message_id) for message in messages]
