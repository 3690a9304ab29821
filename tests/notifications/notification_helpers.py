"""Helpers shared by the notifications tests (a module name no other test folder uses)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import Engine, select

from notifications.tables import messages

# 12:00 in Shanghai, 23:00 the day before in New York: outside quiet hours for Asia/Shanghai.
NOW = datetime(2026, 11, 5, 4, 0, tzinfo=UTC)
_ids = itertools.count(1)


def fetch_message(engine: Engine, message_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(messages).where(messages.c.message_id == message_id)).mappings()
        return dict(row.one())


def statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(messages.c.message_id, messages.c.status)).all())


def member_event(
    member_id: str,
    *,
    at: str = "2026-11-01T10:00:00+08:00",
    kind: str = "member.registered",
    **profile: Any,
) -> dict[str, Any]:
    data = {
        "first_name": "Alice",
        "email": f"{member_id}@example.com",
        "phone": "+8613800000001",
        "push_token": f"push-{member_id}-abcdef",
        "timezone": "Asia/Shanghai",
        "locale": "zh-CN",
        "consents": {"email": True, "sms": True, "push": True},
    } | profile
    data = {key: value for key, value in data.items() if value is not None}
    return {
        "id": f"evt-{next(_ids)}",
        "type": kind,
        "occurred_at": at,
        "member_id": member_id,
        "data": data,
    }


class FakeProvider:
    """An HTTP provider on loopback (http.server in a thread), as an SMS gateway or push service.

    It answers each POST with the next scripted status (then 200), keeps every request, and
    honours ``Idempotency-Key``: a key it has accepted gets the same id back, and is not
    delivered again.
    """

    def __init__(self, statuses: list[int] | None = None, *, delay_s: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.delivered: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1/messages"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, reply = provider.answer(dict(self.headers), body)
                time.sleep(provider.delay_s)
                payload = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 429:
                    self.send_header("Retry-After", "90")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def answer(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append({"headers": headers, "json": body})
            status = self.statuses.pop(0) if self.statuses else 200
            if status != 200:
                return status, {"error": f"status {status}"}
            key = headers.get("Idempotency-Key") or f"anon-{len(self.requests)}"
            if key not in self.delivered:
                self.delivered[key] = {"id": f"prov-{len(self.delivered) + 1}", "json": body}
            return 200, {"id": self.delivered[key]["id"]}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
